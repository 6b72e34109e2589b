"""route-finder over real HTTP with transport-discovery: two daemons sharing
one redis, and both services in one skywire-svc process on the embedded
store.  Transports are posted to transport-discovery; routes are asked of
route-finder, which must notice changes through the store alone."""

import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "py"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "transport-discovery"))
from swclient import Daemon, Key, Redis, auth_request, free_port, http_up, request  # noqa
from swclient import wait_until  # noqa: E402
from tpclient import entry  # noqa: E402


def healthy(base):
    """route-finder answers /health 200 once its graph is loaded."""
    return wait_until(lambda: request("GET", base + "/health").status == 200, 10)


def key_pair(a, b):
    return a.pk + ":" + b.pk


class Cases:
    """Set td_base and rf_base in setUpClass."""

    def register(self, a, b, typ="dmsg"):
        e = entry(a, b, typ)
        r = auth_request(self.td_base, "POST", "/transports/", a, [e])
        self.assertEqual(r.status, 201, r.body)
        return e["t_id"]

    def routes(self, pairs, **opts):
        body = {"edges": [[a.pk, b.pk] for a, b in pairs]}
        if opts:
            body["opts"] = opts
        return request("POST", self.rf_base + "/routes", body)

    def wait_paths(self, a, b, n, **opts):
        """Poll until the pair has n paths (route-finder refreshes on its timer)."""
        def ok():
            r = self.routes([(a, b)], **opts)
            return r.status in (200, 404) and len(r.json().get(key_pair(a, b), [])) == n
        self.assertTrue(wait_until(ok, 10), "pair never had %d paths" % n)
        return self.routes([(a, b)], **opts)

    def check_path(self, path, a, b):
        self.assertEqual(path[0]["from"], a.pk)
        self.assertEqual(path[-1]["to"], b.pk)
        for h1, h2 in zip(path, path[1:]):
            self.assertEqual(h1["to"], h2["from"])
        nodes = [path[0]["from"]] + [h["to"] for h in path]
        self.assertEqual(len(nodes), len(set(nodes)), "loop in %r" % path)

    def test_routes_follow_transports(self):
        # a - b - c - d in a line, and a - d directly by two types.
        a, b, c, d = (Key() for _ in range(4))
        self.register(a, b)
        self.register(b, c)
        self.register(c, d)
        r = self.wait_paths(a, d, 1)
        self.assertEqual(r.status, 200)
        [path] = r.json()[key_pair(a, d)]
        self.assertEqual(len(path), 3)
        self.check_path(path, a, d)
        # Shorter paths appear; shortest first, equal lengths by t_id.
        t1 = self.register(a, d, "stcpr")
        t2 = self.register(d, a, "sudph")
        r = self.wait_paths(a, d, 3)
        paths = r.json()[key_pair(a, d)]
        self.assertEqual([len(p) for p in paths], [1, 1, 3])
        self.assertEqual([p[0]["t_id"] for p in paths[:2]], sorted([t1, t2]))
        for p in paths:
            self.check_path(p, a, d)
        # Either direction.
        back = self.routes([(d, a)]).json()[key_pair(d, a)]
        self.assertEqual([len(p) for p in back], [1, 1, 3])
        self.check_path(back[2], d, a)
        # Hop bounds.
        r = self.routes([(a, d)], min_hops=2)
        self.assertEqual([len(p) for p in r.json()[key_pair(a, d)]], [3])
        r = self.routes([(a, d)], max_hops=2)
        self.assertEqual([len(p) for p in r.json()[key_pair(a, d)]], [1, 1])
        r = self.routes([(a, d)], min_hops=2, max_hops=2)
        self.assertEqual(r.status, 404)
        # A pair without a path is [] beside one with paths; 404 only when none has one.
        lone = Key()
        r = self.routes([(a, d), (a, lone), (a, d)])
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()[key_pair(a, lone)], [])
        self.assertEqual(len(r.json()), 2)
        r = self.routes([(a, lone)])
        self.assertEqual(r.status, 404)
        self.assertIn("error", r.json())
        # A deleted transport leaves the routes.
        self.assertEqual(auth_request(self.td_base, "DELETE", "/transports/id:" + t1,
                                      a).status, 200)
        r = self.wait_paths(a, d, 2)
        self.assertEqual([p[0]["t_id"] for p in r.json()[key_pair(a, d)]][0], t2)

    def test_types_option(self):
        # a - b - c over stcpr, and a - c directly over dmsg (a relay hidden in one hop).
        a, b, c = Key(), Key(), Key()
        ab = self.register(a, b, "stcpr")
        bc = self.register(b, c, "stcpr")
        self.register(a, c, "dmsg")
        r = self.wait_paths(a, c, 2)
        self.assertEqual([len(p) for p in r.json()[key_pair(a, c)]], [1, 2])
        r = self.routes([(a, c)], types=["stcpr"])
        self.assertEqual([[h["t_id"] for h in p] for p in r.json()[key_pair(a, c)]],
                         [[ab, bc]])
        r = self.routes([(a, c)], types=["stcpr", "sudph"], min_hops=2)
        self.assertEqual([len(p) for p in r.json()[key_pair(a, c)]], [2])
        r = self.routes([(a, c)], types=["dmsg"])
        self.assertEqual([len(p) for p in r.json()[key_pair(a, c)]], [1])
        self.assertEqual(self.routes([(a, c)], types=["sudph"]).status, 404)
        for bad, status in (("stcpr", 400), ([1], 400), ([], 422), (["udp"], 422)):
            r = self.routes([(a, c)], types=bad)
            self.assertEqual(r.status, status, bad)
            self.assertIn("error", r.json())

    def test_min_hops_on_a_dense_graph(self):
        # K7: from 6 hops every path is Hamiltonian; there are 5! of them.
        ks = [Key() for _ in range(7)]
        for i in range(7):
            for j in range(i + 1, 7):
                self.register(ks[i], ks[j])
        # (Polled: route-finder loads the 21 transports on its refresh timer.)
        r = self.wait_paths(ks[0], ks[1], 5, min_hops=6, max_hops=6)
        paths = r.json()[key_pair(ks[0], ks[1])]
        self.assertEqual([len(p) for p in paths], [6] * 5)
        for p in paths:
            self.check_path(p, ks[0], ks[1])
        self.assertEqual(paths, sorted(paths, key=lambda p: [h["t_id"] for h in p]))

    def test_five_paths_at_most(self):
        a, b = Key(), Key()
        mids = [Key() for _ in range(7)]
        for m in mids:
            self.register(a, m)
            self.register(m, b)
        r = self.wait_paths(a, b, 5)
        paths = r.json()[key_pair(a, b)]
        self.assertEqual([len(p) for p in paths], [2] * 5)
        firsts = [p[0]["t_id"] for p in paths]
        self.assertEqual(firsts, sorted(firsts))

    def test_bad_requests(self):
        a, b = Key(), Key()
        url = self.rf_base + "/routes"

        def status(body):
            r = request("POST", url, body if isinstance(body, bytes) else
                        json.dumps(body).encode())
            self.assertIn("error", r.json())
            return r.status

        for body in (b"{", b"not json", b"", b"\xff"):
            self.assertEqual(status(body), 400)
        self.assertEqual(status([]), 400)
        self.assertEqual(status({}), 400)
        self.assertEqual(status({"edges": "x"}), 400)
        self.assertEqual(status({"edges": [[a.pk]]}), 400)
        self.assertEqual(status({"edges": [[a.pk, 5]]}), 400)
        self.assertEqual(status({"edges": [[a.pk, "zz" * 32]]}), 400)
        self.assertEqual(status({"edges": [[a.pk, b.pk.upper()]]}), 400)
        self.assertEqual(status({"edges": [[a.pk, b.pk]], "opts": []}), 400)
        self.assertEqual(status({"edges": [[a.pk, b.pk]], "opts": {"max_hops": "3"}}), 400)
        self.assertEqual(status({"edges": [[a.pk, b.pk]], "opts": {"max_hops": 2.5}}), 400)
        self.assertEqual(status({"edges": []}), 422)
        self.assertEqual(status({"edges": [[a.pk, a.pk]]}), 422)
        self.assertEqual(status({"edges": [[a.pk, b.pk]], "opts": {"max_hops": 11}}), 422)
        self.assertEqual(status({"edges": [[a.pk, b.pk]], "opts": {"max_hops": 0}}), 422)
        self.assertEqual(status({"edges": [[a.pk, b.pk]], "opts": {"min_hops": 0}}), 422)
        self.assertEqual(status({"edges": [[a.pk, b.pk]],
                                 "opts": {"min_hops": 4, "max_hops": 3}}), 422)
        self.assertEqual(status({"edges": [[Key().pk, Key().pk] for _ in range(33)]}), 413)
        self.assertEqual(status({"edges": [[a.pk, b.pk]], "pad": "x" * 70000}), 413)
        r = request("POST", url, {"edges": [[Key().pk, Key().pk] for _ in range(32)]})
        self.assertEqual(r.status, 404)
        self.assertEqual(request("GET", url).status, 405)


class TestSharedRedis(Cases, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = Redis()
        cls.td = Daemon("transport-discovery", "--redis", cls.redis.url)
        cls.rf = Daemon("route-finder", "--redis", cls.redis.url, "--refresh-ms", "50")
        cls.td_base, cls.rf_base = cls.td.base, cls.rf.base
        assert healthy(cls.rf_base), "route-finder never loaded its graph"

    @classmethod
    def tearDownClass(cls):
        rcs = (cls.rf.stop(), cls.td.stop())
        cls.redis.stop()
        assert rcs == (0, 0), rcs

    def test_health(self):
        h = request("GET", self.rf_base + "/health")
        self.assertEqual(h.status, 200)
        self.assertEqual(h.json()["service"], "route-finder")
        self.assertEqual(h.json()["checks"]["graph"], "ok")
        m = request("GET", self.rf_base + "/metrics").body.decode()
        self.assertIn("rf_graph_transports", m)

    def test_restart_reloads_graph(self):
        a, b = Key(), Key()
        self.register(a, b)
        self.wait_paths(a, b, 1)
        self.assertEqual(self.rf.stop(), 0)
        self.rf.start()
        self.__class__.rf_base = self.rf.base
        self.assertTrue(healthy(self.rf_base))
        r = self.routes([(a, b)])
        self.assertEqual(r.status, 200)  # healthy means loaded
        self.assertEqual(len(r.json()[key_pair(a, b)]), 1)


class TestExpiry(unittest.TestCase):
    """Transports that expire in transport-discovery's store leave the routes."""

    def test_expired_transports_are_not_routed(self):
        redis = Redis()
        # Expiry is kept in whole seconds, so a 1 s TTL can end at once: use 3 s.
        td = Daemon("transport-discovery", "--redis", redis.url, "--entry-timeout-s", "3")
        rf = Daemon("route-finder", "--redis", redis.url, "--refresh-ms", "50")
        try:
            self.assertTrue(healthy(rf.base))
            a, b = Key(), Key()
            r = auth_request(td.base, "POST", "/transports/", a, [entry(a, b)])
            self.assertEqual(r.status, 201)

            def paths():
                r = request("POST", rf.base + "/routes", {"edges": [[a.pk, b.pk]]})
                return len(r.json().get(key_pair(a, b), []))
            self.assertTrue(wait_until(lambda: paths() == 1, 5))
            self.assertTrue(wait_until(lambda: paths() == 0, 8))
        finally:
            rf.stop()
            td.stop()
            redis.stop()


class TestOneProcess(Cases, unittest.TestCase):
    """Both in one skywire-svc on the embedded store: route-finder reads the same store."""

    @classmethod
    def setUpClass(cls):
        tmp = os.environ.get("SW_TMP", "/tmp")
        tp, rp, hp = free_port(), free_port(), free_port()
        cls.cfg = os.path.join(tmp, "rf-one-%d.json" % hp)
        with open(cls.cfg, "w") as f:
            json.dump({"log": {"level": "warn"}, "health_addr": "127.0.0.1:%d" % hp,
                       "services": [
                           {"type": "route-finder", "listen": "127.0.0.1:%d" % rp,
                            "refresh_ms": 50},
                           {"type": "transport-discovery", "listen": "127.0.0.1:%d" % tp}]},
                      f)
        cls.log = open(cls.cfg + ".log", "ab")
        bindir = os.path.join(os.environ.get("SW_BUILD", "build"), "bin")
        cls.proc = subprocess.Popen([os.path.join(bindir, "skywire-svc"), "run", "--config",
                                     cls.cfg], stdout=cls.log, stderr=cls.log)
        cls.td_base = "http://127.0.0.1:%d" % tp
        cls.rf_base = "http://127.0.0.1:%d" % rp
        up = wait_until(lambda: cls.proc.poll() is not None or
                        request("GET", "http://127.0.0.1:%d/health" % hp).status == 200
                        if http_up("http://127.0.0.1:%d/health" % hp) else False, 15)
        assert up and cls.proc.poll() is None, "skywire-svc did not become healthy"

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        rc = cls.proc.wait(15)
        cls.log.close()
        assert rc == 0, rc


if __name__ == "__main__":
    unittest.main(verbosity=2)

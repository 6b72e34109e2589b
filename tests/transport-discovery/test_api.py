"""transport-discovery over real HTTP, on the embedded store and on redis:
the daemon is started from build/bin on free ports and driven by an
independent client (tests/py/swclient.py; t_ids from tpclient.py)."""

import json
import os
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "py"))
sys.path.insert(0, os.path.dirname(__file__))
from swclient import (Daemon, Key, OnRedis, Redis, auth_request, metric,  # noqa: E402
                      request, wait_until)
from tpclient import entry, t_id  # noqa: E402

T = "/transports/"


def ids(resp):
    return sorted(e["t_id"] for e in resp.json())


def hits(base):
    """List reads served from the list cache (common/svc_api_cache)."""
    return metric(base, "sw_list_cache_reads_total", 'result="hit"')


class Base:
    """The cases, run once per store (subclasses set up the daemon)."""

    extra = []

    @classmethod
    def setUpClass(cls):
        cls.td = Daemon("transport-discovery", "--entry-timeout-s", "60", *cls.extra)
        cls.base = cls.td.base

    @classmethod
    def tearDownClass(cls):
        rc = cls.td.stop()
        assert rc == 0, "graceful stop must exit 0, got %r" % rc

    def post(self, key, entries, **kw):
        return auth_request(self.base, "POST", T, key, entries, **kw)

    def get(self, path):
        return request("GET", self.base + path)

    def test_register_get_list_delete(self):
        a, b, c = Key(), Key(), Key()
        ab, ac = entry(a, b), entry(a, c, "stcpr", "automatic")
        t0 = int(time.time())
        r = self.post(a, [ab, ac])
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(r.headers.get("Content-Type"), "application/json")
        body = r.json()
        self.assertEqual(len(body), 2)
        for sent, got in zip([ab, ac], body):
            reg = got.pop("registered")
            # time() in C reads a coarse clock: it may lag a tick behind Python's.
            self.assertTrue(t0 - 1 <= reg <= int(time.time()) + 1)
            self.assertEqual(got, sent)
        got = self.get(T + "id:" + ab["t_id"])
        self.assertEqual(got.status, 200)
        self.assertEqual({k: v for k, v in got.json().items() if k != "registered"}, ab)
        self.assertEqual(ids(self.get(T + "edge:" + a.pk)), sorted([ab["t_id"], ac["t_id"]]))
        self.assertEqual(ids(self.get(T + "edge:" + b.pk)), [ab["t_id"]])
        self.assertEqual(self.get(T + "edge:" + Key().pk).json(), [])
        alls = ids(self.get("/all-transports"))
        self.assertIn(ab["t_id"], alls)
        self.assertIn(ac["t_id"], alls)
        # The other edge re-registers the same transport: refreshed, not a conflict;
        # the label may change.
        r = self.post(b, [dict(ab, label="skycoin")])
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(self.get(T + "id:" + ab["t_id"]).json()["label"], "skycoin")
        self.assertEqual(ids(self.get(T + "edge:" + b.pk)), [ab["t_id"]])
        # Either edge may delete it.
        self.assertEqual(auth_request(self.base, "DELETE", T + "id:" + ab["t_id"], b).status,
                         200)
        self.assertEqual(self.get(T + "id:" + ab["t_id"]).status, 404)
        self.assertEqual(ids(self.get(T + "edge:" + a.pk)), [ac["t_id"]])
        self.assertEqual(self.get(T + "edge:" + b.pk).json(), [])
        self.assertNotIn(ab["t_id"], ids(self.get("/all-transports")))
        r = auth_request(self.base, "DELETE", T + "id:" + ab["t_id"], a)
        self.assertEqual(r.status, 404)
        self.assertIn("error", r.json())

    def test_edges_in_either_order(self):
        a, b = Key(), Key()
        e = entry(a, b)
        e["edges"] = list(reversed(e["edges"]))
        r = self.post(b, [e])
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(r.json()[0]["edges"], sorted([a.pk, b.pk]))

    def test_httpauth(self):
        a, b = Key(), Key()
        e = entry(a, b)
        self.assertEqual(self.get("/security/nonces/" + a.pk).json(),
                         {"edge": a.pk, "next_nonce": 0})
        # No headers, a bad signature, a signature over another body: 401, nothing changes.
        r = request("POST", self.base + T, [e])
        self.assertEqual(r.status, 401)
        self.assertIn("error", r.json())
        r = self.post(a, [e], nonce=0, tamper=lambda h: h.update({"SW-Sig": "11" * 64}))
        self.assertEqual(r.status, 401)
        r = self.post(a, [e], nonce=0, tamper=lambda h: h.update({"SW-Sig": a.sign(
            b"POST /transports/\n0\n[]")}))
        self.assertEqual(r.status, 401)
        self.assertEqual(self.get("/security/nonces/" + a.pk).json()["next_nonce"], 0)
        self.assertEqual(self.get(T + "id:" + e["t_id"]).status, 404)
        # Valid, then the same nonce again: refused with the next one to use.
        self.assertEqual(self.post(a, [e], nonce=0).status, 201)
        r = self.post(a, [e], nonce=0)
        self.assertEqual(r.status, 401)
        self.assertEqual(r.json()["next_nonce"], 1)
        # A foreign key: not an edge of (every) entry.
        other = Key()
        r = self.post(other, [e])
        self.assertEqual(r.status, 403)
        self.assertIn("error", r.json())
        r = self.post(a, [e, entry(b, other)])
        self.assertEqual(r.status, 403)
        self.assertEqual(self.get(T + "id:" + entry(b, other)["t_id"]).status, 404)
        r = auth_request(self.base, "DELETE", T + "id:" + e["t_id"], other)
        self.assertEqual(r.status, 403)
        self.assertEqual(self.get(T + "id:" + e["t_id"]).status, 200)
        # A signature for another path does not carry over to DELETE.
        n = self.get("/security/nonces/" + a.pk).json()["next_nonce"]
        r = auth_request(self.base, "DELETE", T + "id:" + e["t_id"], a, nonce=n,
                         tamper=lambda h: h.update({"SW-Sig": a.sign(
                             ("DELETE /elsewhere\n%d\n" % n).encode())}))
        self.assertEqual(r.status, 401)
        self.assertEqual(request("DELETE", self.base + T + "id:" + e["t_id"]).status, 401)
        self.assertEqual(self.get(T + "id:" + e["t_id"]).status, 200)

    def test_invalid_entries(self):
        a, b = Key(), Key()
        good = entry(a, b)

        def status(entries):
            r = self.post(a, entries)
            self.assertIn("error", r.json())
            return r.status

        self.assertEqual(status([dict(good, t_id=t_id(a.pk, b.pk, "stcpr"))]), 422)
        self.assertEqual(status([dict(good, t_id=good["t_id"].upper())]), 422)
        self.assertEqual(status([dict(good, t_id="not-a-uuid")]), 422)
        self.assertEqual(status([{k: v for k, v in good.items() if k != "type"}]), 400)
        self.assertEqual(status([{k: v for k, v in good.items() if k != "label"}]), 400)
        self.assertEqual(status([{k: v for k, v in good.items() if k != "t_id"}]), 400)
        self.assertEqual(status([dict(good, type=7)]), 400)
        self.assertEqual(status([dict(good, type="tcp")]), 422)
        self.assertEqual(status([dict(good, type="")]), 422)
        self.assertEqual(status([dict(good, label="mine")]), 422)
        self.assertEqual(status([dict(good, edges=[a.pk])]), 400)
        self.assertEqual(status([dict(good, edges=[a.pk, "zz" * 32])]), 400)
        self.assertEqual(status([dict(good, edges=[a.pk.upper(), b.pk])]), 400)
        self.assertEqual(status([dict(good, edges=[a.pk, "00" * 32])]), 400)
        self.assertEqual(status([entry(a, a)]), 422)
        self.assertEqual(status([good, good]), 422)
        self.assertEqual(status([]), 422)
        self.assertEqual(status([good, "x"]), 400)
        self.assertEqual(status({"t_id": good["t_id"]}), 400)
        many = [entry(a, Key()) for _ in range(101)]
        self.assertEqual(status(many), 413)
        self.assertEqual(self.post(a, many[:100]).status, 201)
        # Nothing of the refused requests was stored.
        self.assertEqual(self.get(T + "id:" + good["t_id"]).status, 404)

    def test_malformed_and_large_bodies(self):
        a = Key()
        for body in (b"{", b"not json", b"[1,2", b"\xff\xfe", b""):
            r = auth_request(self.base, "POST", T, a, body)
            self.assertEqual(r.status, 400, body)
            self.assertIn("error", r.json())
        big = json.dumps([entry(a, Key()) for _ in range(300)]).encode()
        self.assertGreater(len(big), 64 * 1024)
        r = auth_request(self.base, "POST", T, a, big)
        self.assertEqual(r.status, 413)
        self.assertIn("error", r.json())
        # A bad body never costs a nonce (checked before the signature).
        self.assertEqual(self.get("/security/nonces/" + a.pk).json()["next_nonce"], 0)

    def test_bad_urls(self):
        self.assertEqual(self.get(T + "id:nope").status, 400)
        self.assertEqual(self.get(T + "id:" + t_id("00" * 31 + "01", "00" * 31 + "02",
                                                    "dmsg").upper()).status, 400)
        self.assertEqual(self.get(T + "edge:abc").status, 400)
        self.assertEqual(self.get(T + "edge:" + Key().pk.upper()).status, 400)
        r = self.get(T + "id:" + t_id("00" * 31 + "01", "00" * 31 + "02", "dmsg"))
        self.assertEqual(r.status, 404)
        self.assertIn("error", r.json())
        self.assertEqual(self.get("/nope").status, 404)
        self.assertEqual(request("PUT", self.base + "/all-transports").status, 405)
        self.assertEqual(request("DELETE", self.base + "/all-transports").status, 405)
        self.assertEqual(auth_request(self.base, "DELETE", T + "id:nope", Key()).status, 400)

    def test_health_and_metrics(self):
        h = self.get("/health")
        self.assertEqual(h.status, 200)
        body = h.json()
        self.assertEqual(body["status"], "ok")
        self.assertEqual(body["service"], "transport-discovery")
        self.assertEqual(body["checks"]["store"], "ok")
        self.get("/all-transports")
        m = self.get("/metrics").body.decode()
        self.assertIn("sw_http_requests_total{", m)
        self.assertIn('service="transport-discovery"', m)


class TestMemory(Base, unittest.TestCase):
    pass


class TestNoListCache(Base, unittest.TestCase):
    """The same answers with the list cache off (every list read from the store)."""
    extra = ["--list-cache-bytes", "0"]


def redis_cli(redis, *args):
    return subprocess.run(["redis-cli", "-p", str(redis.port)] + list(args),
                          capture_output=True, text=True, check=True).stdout.strip()


class TestRedis(OnRedis, Base, unittest.TestCase):

    def test_version_counts_writes(self):
        a, b = Key(), Key()
        v0 = int(redis_cli(self.redis, "GET", "tpd:version") or 0)
        self.assertEqual(self.post(a, [entry(a, b), entry(a, b, "sudph")]).status, 201)
        self.assertEqual(int(redis_cli(self.redis, "GET", "tpd:version")), v0 + 1)
        self.assertEqual(auth_request(self.base, "DELETE", T + "id:" + entry(a, b)["t_id"],
                                      a).status, 200)
        self.assertEqual(int(redis_cli(self.redis, "GET", "tpd:version")), v0 + 2)
        ttl = int(redis_cli(self.redis, "TTL", "tpd:tp:" + entry(a, b, "sudph")["t_id"]))
        self.assertTrue(50 < ttl <= 60, ttl)

    def test_conflicting_registration(self):
        # A t_id is derived from edges and type, so only a record that disagrees with
        # its own id (written behind the server's back) can conflict.
        a, b, c = Key(), Key(), Key()
        e = entry(a, b)
        forged = dict(entry(a, c), t_id=e["t_id"], registered=1)
        redis_cli(self.redis, "SET", "tpd:tp:" + e["t_id"], json.dumps(forged))
        r = self.post(a, [entry(a, Key()), e])
        self.assertEqual(r.status, 409)
        self.assertIn(e["t_id"], r.json()["error"])
        self.assertEqual(self.get(T + "id:" + e["t_id"]).json()["edges"], forged["edges"])
        self.assertEqual(self.get(T + "edge:" + a.pk).json(), [])  # nothing of the batch
        # An unreadable record is replaced.
        redis_cli(self.redis, "SET", "tpd:tp:" + e["t_id"], "garbage")
        self.assertEqual(self.post(a, [e]).status, 201)
        self.assertEqual(self.get(T + "id:" + e["t_id"]).json()["edges"], e["edges"])

    def test_restart_keeps_transports(self):
        a = Key()
        es = [entry(a, Key()) for _ in range(20)]
        self.assertEqual(self.post(a, es).status, 201)
        self.assertEqual(self.td.stop(), 0)
        self.td.start()
        self.__class__.base = self.td.base
        self.assertEqual(ids(self.get(T + "edge:" + a.pk)), sorted(e["t_id"] for e in es))
        for e in es[:3]:
            self.assertEqual(self.get(T + "id:" + e["t_id"]).status, 200)
        # The nonce survived too.
        self.assertEqual(self.get("/security/nonces/" + a.pk).json()["next_nonce"], 1)

    def test_two_replicas(self):
        other = Daemon("transport-discovery", "--entry-timeout-s", "60", *self.extra)
        try:
            bases = [self.base, other.base]
            keys = [Key() for _ in range(8)]
            posted = []
            errors = []

            def writer(i):
                k = keys[i]
                for j in range(5):
                    e = entry(k, Key(), ["dmsg", "stcpr", "sudph"][j % 3])
                    r = auth_request(bases[(i + j) % 2], "POST", T, k, [e])
                    if r.status != 201:
                        errors.append((r.status, r.body))
                    posted.append(e["t_id"])
            threads = [threading.Thread(target=writer, args=(i,)) for i in range(len(keys))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(errors, [])
            views = [ids(request("GET", b + "/all-transports")) for b in bases]
            self.assertEqual(views[0], views[1])
            self.assertTrue(set(posted) <= set(views[0]))
            for k in keys:
                self.assertEqual(ids(request("GET", bases[0] + T + "edge:" + k.pk)),
                                 ids(request("GET", bases[1] + T + "edge:" + k.pk)))
            # One signed request fired at both at once: exactly one is accepted.
            for _ in range(10):
                k = Key()
                body = json.dumps([entry(k, Key())]).encode()
                msg = b"POST " + T.encode() + b"\n0\n" + body
                hdrs = {"SW-Public": k.pk, "SW-Nonce": "0", "SW-Sig": k.sign(msg)}
                statuses = []
                barrier = threading.Barrier(2)

                def fire(b):
                    barrier.wait()
                    statuses.append(request("POST", b + T, body, dict(hdrs)).status)
                ts = [threading.Thread(target=fire, args=(b,)) for b in bases]
                for t in ts:
                    t.start()
                for t in ts:
                    t.join()
                self.assertEqual(sorted(statuses), [201, 401])
        finally:
            self.assertEqual(other.stop(), 0)

    def test_list_cache_exact_across_replicas(self):
        # Replica A keeps its list answers; every write through replica B (same redis)
        # must show in A's very next read, and a read with no write between is a hit.
        other = Daemon("transport-discovery", "--entry-timeout-s", "60", *self.extra)
        try:
            a, b, c = Key(), Key(), Key()
            ab, ac = entry(a, b), entry(a, c, "stcpr")

            def edge_a():
                return self.get(T + "edge:" + a.pk).json()

            def read_twice(want):
                h = hits(self.base)
                self.assertEqual(sorted(e["t_id"] for e in edge_a()), want)
                got = edge_a()
                self.assertEqual(sorted(e["t_id"] for e in got), want)
                self.assertEqual(hits(self.base), h + 1)
                return got
            read_twice([])
            self.assertEqual(self.post(a, [ab]).status, 201)
            read_twice([ab["t_id"]])
            self.assertEqual(auth_request(other.base, "POST", T, c, [ac]).status, 201)
            read_twice(sorted([ab["t_id"], ac["t_id"]]))
            # A refresh through B that changes only the label.
            r = auth_request(other.base, "POST", T, b, [dict(ab, label="skycoin")])
            self.assertEqual(r.status, 201)
            got = read_twice(sorted([ab["t_id"], ac["t_id"]]))
            self.assertEqual([e["label"] for e in got if e["t_id"] == ab["t_id"]], ["skycoin"])
            self.assertEqual(auth_request(other.base, "DELETE", T + "id:" + ab["t_id"],
                                          b).status, 200)
            read_twice([ac["t_id"]])
            self.assertNotIn(ab["t_id"], ids(self.get("/all-transports")))
            self.assertIn(ac["t_id"], ids(self.get("/all-transports")))
        finally:
            self.assertEqual(other.stop(), 0)

    def test_redis_down_means_503(self):
        a, b = Key(), Key()
        self.assertEqual(self.post(a, [entry(a, b)]).status, 201)
        self.redis.stop()
        try:
            self.assertTrue(wait_until(lambda: self.get("/health").status == 503, 10))
            self.assertEqual(self.get("/health").json()["checks"]["store"], "down")
            self.assertEqual(self.get(T + "id:" + entry(a, b)["t_id"]).status, 503)
            self.assertEqual(self.get("/all-transports").status, 503)
            r = self.post(a, [entry(a, b)], nonce=1)
            self.assertEqual(r.status, 503)
        finally:
            self.redis.start()
        self.assertTrue(wait_until(lambda: self.get("/health").status == 200, 15))
        self.assertEqual(self.post(a, [entry(a, b)]).status, 201)


class TestExpiry(unittest.TestCase):
    """Short TTLs: a transport and every index forget it when it expires."""

    def run_expiry(self, extra, redis=None):
        # 2 s, not 1: expiry is kept in whole seconds, so a 1 s entry can be gone
        # before the GET that follows its re-post (seen under ASan).
        td = Daemon("transport-discovery", "--entry-timeout-s", "2", *extra)
        try:
            a, b, c = Key(), Key(), Key()
            e1, e2 = entry(a, b), entry(a, c, "stcpr")
            self.assertEqual(auth_request(td.base, "POST", T, a, [e1, e2]).status, 201)
            self.assertEqual(request("GET", td.base + T + "id:" + e1["t_id"]).status, 200)
            # The lists are read (and kept by the list cache) before the expiry, and
            # again until the cache has served them: expiry alone must end that.
            want = sorted([e1["t_id"], e2["t_id"]])
            h = hits(td.base)
            for _ in range(2):
                self.assertEqual(ids(request("GET", td.base + T + "edge:" + a.pk)), want)
                self.assertEqual(ids(request("GET", td.base + "/all-transports")), want)
            self.assertGreater(hits(td.base), h)
            self.assertTrue(wait_until(
                lambda: request("GET", td.base + T + "id:" + e1["t_id"]).status == 404, 8))
            self.assertEqual(request("GET", td.base + T + "id:" + e2["t_id"]).status, 404)
            for k in (a, b, c):
                self.assertEqual(request("GET", td.base + T + "edge:" + k.pk).json(), [])
            self.assertEqual(request("GET", td.base + "/all-transports").json(), [])
            if redis is not None:
                # The index sets expire with their last member.
                self.assertTrue(wait_until(
                    lambda: redis_cli(redis, "EXISTS", "tpd:edge:" + a.pk) == "0", 5))
                self.assertEqual(redis_cli(redis, "EXISTS", "tpd:all"), "0")
            # A re-post brings it back.
            self.assertEqual(auth_request(td.base, "POST", T, b, [e1]).status, 201)
            self.assertEqual(ids(request("GET", td.base + T + "edge:" + a.pk)), [e1["t_id"]])
        finally:
            td.stop()

    def test_memory(self):
        self.run_expiry([])

    def test_redis(self):
        r = Redis()
        try:
            self.run_expiry(["--redis", r.url], r)
        finally:
            r.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)

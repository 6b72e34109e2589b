"""route-finder following transport-discovery's all-transports CXO feed
instead of a shared store: each daemon on its own embedded store, so the
feed is the only way route-finder can learn of a transport.  Over TCP
(--feed-addr, transport-discovery's --cxo-tcp-addr) and over dmsg (a real
dmsg-discovery and dmsg-server)."""

import os
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "py"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "transport-discovery"))
from swclient import Daemon, Key, auth_request, free_port, request, wait_until  # noqa: E402
from tpclient import entry  # noqa: E402

BIN = os.path.join(os.environ.get("SW_BUILD", "build"), "bin")


def key_pair(a, b):
    return a.pk + ":" + b.pk


def health(base):
    r = request("GET", base + "/health")
    return r.status, r.json()


class Cases:
    """Set td (a Daemon) and rf_base; wait is the deadline for the feed to show a change."""

    wait = 10

    def register(self, a, b, typ="dmsg"):
        e = entry(a, b, typ)
        r = auth_request(self.td.base, "POST", "/transports/", a, [e])
        self.assertEqual(r.status, 201, r.body)
        return e["t_id"]

    def routes(self, a, b):
        r = request("POST", self.rf_base + "/routes", {"edges": [[a.pk, b.pk]]})
        self.assertIn(r.status, (200, 404), r.body)
        return r.json().get(key_pair(a, b), [])

    def wait_hops(self, a, b, hops):
        """Poll until the pair's paths have these hop counts."""
        got = {}

        def ok():
            got["p"] = self.routes(a, b)
            return [len(p) for p in got["p"]] == hops
        self.assertTrue(wait_until(ok, self.wait, 0.05),
                        "wanted %r hops, have %r" % (hops, got.get("p")))
        return got["p"]

    def test_routes_follow_the_feed(self):
        a, b, c, d = (Key() for _ in range(4))
        self.register(a, b)
        self.register(b, c)
        self.register(c, d)
        [path] = self.wait_hops(a, d, [3])
        self.assertEqual([h["from"] for h in path], [a.pk, b.pk, c.pk])
        self.assertEqual([h["to"] for h in path], [b.pk, c.pk, d.pk])
        t1 = self.register(a, d, "stcpr")
        paths = self.wait_hops(a, d, [1, 3])
        self.assertEqual(paths[0][0]["t_id"], t1)
        # A deleted transport leaves the routes (one leaf removed from the feed).
        r = auth_request(self.td.base, "DELETE", "/transports/id:" + t1, d)
        self.assertEqual(r.status, 200)
        self.wait_hops(a, d, [3])
        h = health(self.rf_base)
        self.assertEqual(h[0], 200)
        self.assertEqual(h[1]["checks"]["graph"], "ok")
        self.assertEqual(h[1]["checks"]["feed"], "ok")


class TestTCP(Cases, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.key = Key()
        cls.cxo = "127.0.0.1:%d" % free_port()
        cls.td = Daemon("transport-discovery", "--secret-key", cls.key.seed, "--cxo-tcp-addr",
                        cls.cxo)
        cls.rf = Daemon("route-finder", "--transport-discovery-pk", cls.key.pk, "--feed-addr",
                        cls.cxo)
        cls.rf_base = cls.rf.base
        assert wait_until(lambda: health(cls.rf_base)[0] == 200, 10), "no first snapshot"

    @classmethod
    def tearDownClass(cls):
        rcs = (cls.rf.stop(), cls.td.stop())
        assert rcs == (0, 0), rcs

    def test_restart_of_the_publisher(self):
        a, b, c = Key(), Key(), Key()
        self.register(a, b)
        self.register(b, c)
        self.wait_hops(a, c, [2])
        self.assertEqual(self.td.stop(), 0)
        # The feed is down: reported, still healthy, the last graph answers.
        self.assertTrue(wait_until(lambda: health(self.rf_base)[1]["checks"]["feed"]
                                   .startswith("down"), 10))
        self.assertEqual(health(self.rf_base)[0], 200)
        self.assertEqual([len(p) for p in self.routes(a, c)], [2])
        # Back with an empty store: route-finder follows it (the old routes go), then
        # what is registered now.
        self.td.start()
        self.wait_hops(a, c, [])
        self.register(a, c, "sudph")
        self.wait_hops(a, c, [1])
        self.assertTrue(wait_until(lambda: health(self.rf_base)[1]["checks"]["feed"] == "ok",
                                   10))


class TestBeforeSnapshot(unittest.TestCase):
    def test_unreachable_publisher(self):
        """No snapshot yet: /health and /routes say 503; the first snapshot makes it healthy."""
        key = Key()
        cxo = "127.0.0.1:%d" % free_port()
        rf = Daemon("route-finder", "--transport-discovery-pk", key.pk, "--feed-addr", cxo)
        td = None
        try:
            st, h = health(rf.base)
            self.assertEqual(st, 503)
            self.assertEqual(h["checks"]["graph"], "loading")
            self.assertTrue(wait_until(lambda: health(rf.base)[1]["checks"]["feed"]
                                       .startswith("down"), 5))
            r = request("POST", rf.base + "/routes", {"edges": [[Key().pk, Key().pk]]})
            self.assertEqual(r.status, 503)
            td = Daemon("transport-discovery", "--secret-key", key.seed, "--cxo-tcp-addr", cxo)
            # The subscriber redials with backoff (1 s doubling).
            self.assertTrue(wait_until(lambda: health(rf.base)[0] == 200, 15))
        finally:
            rcs = (rf.stop(), td.stop() if td else 0)
        self.assertEqual(rcs, (0, 0))

    def test_other_publisher(self):
        """A publisher of another key has no such feed: never loaded, reported down."""
        cxo = "127.0.0.1:%d" % free_port()
        td = Daemon("transport-discovery", "--secret-key", Key().seed, "--cxo-tcp-addr", cxo)
        rf = Daemon("route-finder", "--transport-discovery-pk", Key().pk, "--feed-addr", cxo)
        try:
            self.assertTrue(wait_until(lambda: health(rf.base)[1]["checks"]["feed"]
                                       .startswith("down"), 5))
            self.assertEqual(health(rf.base)[0], 503)
        finally:
            rcs = (rf.stop(), td.stop())
        self.assertEqual(rcs, (0, 0))


class TestConfig(unittest.TestCase):
    def check(self, *args):
        return subprocess.run([os.path.join(BIN, "route-finder"), "--check"] + list(args),
                              capture_output=True, text=True, timeout=10)

    def test_config(self):
        pk = Key().pk
        self.assertEqual(self.check().returncode, 0)
        self.assertEqual(self.check("--transport-discovery-pk", pk, "--feed-addr",
                                    "127.0.0.1:1").returncode, 0)
        self.assertEqual(self.check("--transport-discovery-pk", pk, "--dmsg-discovery",
                                    "http://127.0.0.1:1").returncode, 0)
        for bad in (["--transport-discovery-pk", pk],
                    ["--transport-discovery-pk", "zz", "--feed-addr", "127.0.0.1:1"],
                    ["--transport-discovery-pk", pk, "--feed-addr", "example.com:1"],
                    ["--transport-discovery-pk", pk, "--dmsg-discovery", "ftp://x"],
                    ["--feed-addr", "127.0.0.1:1"],
                    ["--dmsg-discovery", "http://127.0.0.1:1"]):
            r = self.check(*bad)
            self.assertNotEqual(r.returncode, 0, bad)


class TestDmsg(Cases, unittest.TestCase):
    wait = 30

    @classmethod
    def setUpClass(cls):
        cls.dd = Daemon("dmsg-discovery")
        sport, hport = free_port(), free_port()
        cls.srv = subprocess.Popen([os.path.join(BIN, "dmsg-server"), "--listen",
                                    "127.0.0.1:%d" % sport, "--health-listen",
                                    "127.0.0.1:%d" % hport, "--discovery", cls.dd.base],
                                   stderr=subprocess.DEVNULL)
        assert wait_until(lambda: request("GET", cls.dd.base +
                                          "/dmsg-discovery/available_servers").json() != [], 10)
        cls.key = Key()
        cls.td = Daemon("transport-discovery", "--secret-key", cls.key.seed, "--dmsg-discovery",
                        cls.dd.base)
        cls.rf = Daemon("route-finder", "--transport-discovery-pk", cls.key.pk,
                        "--dmsg-discovery", cls.dd.base)
        cls.rf_base = cls.rf.base
        assert wait_until(lambda: health(cls.rf_base)[0] == 200, 30), "no first snapshot"

    @classmethod
    def tearDownClass(cls):
        log = cls.rf.log.name
        rcs = (cls.rf.stop(), cls.td.stop())
        # libevent complains ("[warn] ...") if the dmsg side is freed under a live subscriber.
        with open(log, errors="replace") as f:
            assert "[warn]" not in f.read(), "libevent warning in " + log
        cls.srv.send_signal(signal.SIGTERM)
        cls.srv.wait(15)
        cls.dd.stop()
        assert rcs == (0, 0), rcs


if __name__ == "__main__":
    unittest.main(verbosity=2)

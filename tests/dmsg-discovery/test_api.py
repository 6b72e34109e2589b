"""dmsg-discovery over real HTTP, on the embedded store and on redis: the
daemon is started from build/bin on free ports and driven by an independent
client (tests/py/swclient.py)."""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "py"))
from swclient import (Daemon, Key, OnRedis, Redis, auth_request, client_entry, request,  # noqa: E402
                      server_entry, signed, wait_until)

E = "/dmsg-discovery/entry/"


class Base:
    """The cases, run once per store (subclasses set up the daemon)."""

    redis = None
    extra = []

    @classmethod
    def setUpClass(cls):
        args = ["--entry-timeout-s", "60", "--server-entry-timeout-s", "60"] + cls.extra
        cls.dd = Daemon("dmsg-discovery", *args)
        cls.base = cls.dd.base

    @classmethod
    def tearDownClass(cls):
        rc = cls.dd.stop()
        assert rc == 0, "graceful stop must exit 0, got %r" % rc

    def post(self, entry):
        return request("POST", self.base + E, entry)

    def get(self, path):
        return request("GET", self.base + path)

    def test_register_get_update(self):
        k, s = Key(), Key()
        r = self.post(client_entry(k, 0, [s.pk]))
        self.assertEqual((r.status, r.json()), (200, {"created": True}))
        got = self.get(E + k.pk)
        self.assertEqual(got.status, 200)
        self.assertEqual(got.json(), client_entry_sig(got.json()))
        self.assertEqual(got.json()["static"], k.pk)
        self.assertEqual(got.headers.get("Content-Type"), "application/json")
        r = self.post(client_entry(k, 1, [s.pk]))
        self.assertEqual((r.status, r.json()), (200, {"created": False}))
        self.assertEqual(self.get(E + k.pk).json()["sequence"], 1)
        # Keys in URLs are lowercase hex (spec README); anything else is malformed.
        self.assertEqual(self.get(E + k.pk.upper()).status, 400)

    def test_stale_sequence_and_timestamp(self):
        k = Key()
        now = int(time.time())
        self.assertEqual(self.post(client_entry(k, 5, [], ts=now)).status, 200)
        r = self.post(client_entry(k, 5, [], ts=now))
        self.assertEqual(r.status, 409)
        self.assertIn("error", r.json())
        self.assertEqual(self.post(client_entry(k, 4, [], ts=now)).status, 409)
        self.assertEqual(self.post(client_entry(k, 6, [], ts=now - 10)).status, 409)
        self.assertEqual(self.get(E + k.pk).json()["sequence"], 5)

    def test_bad_signatures(self):
        k, other = Key(), Key()
        e = client_entry(k, 0, [])
        e["signature"] = "00" * 64
        r = self.post(e)
        self.assertEqual(r.status, 401)
        self.assertIn("error", r.json())
        forged = signed({"version": "0.0.1", "sequence": 0, "timestamp": int(time.time()),
                         "static": k.pk, "client": {"delegated_servers": []}}, other)
        self.assertEqual(self.post(forged).status, 401)
        e = client_entry(k, 0, [])
        e["sequence"] = 1  # changed after signing
        self.assertEqual(self.post(e).status, 401)
        del e["signature"]
        self.assertEqual(self.post(e).status, 401)
        self.assertEqual(self.get(E + k.pk).status, 404)

    def test_malformed_and_invalid(self):
        k = Key()
        for body in (b"{", b"not json", b"[1,2", b"\xff\xfe", b""):
            r = request("POST", self.base + E, body)
            self.assertEqual(r.status, 400, body)
            self.assertIn("error", r.json())
        self.assertEqual(request("POST", self.base + E, b"[]").status, 400)
        bad = client_entry(k, 0, [])
        bad["static"] = "zz" * 32
        self.assertEqual(self.post(bad).status, 400)
        self.assertEqual(self.post(signed({**client_entry(k, 0, []), "version": "9"},
                                          k)).status, 422)
        neither = signed({"version": "0.0.1", "sequence": 0, "timestamp": int(time.time()),
                          "static": k.pk}, k)
        self.assertEqual(self.post(neither).status, 422)
        self.assertEqual(self.post(server_entry(k, 0, "127.0.0.1:0")).status, 422)
        self.assertEqual(self.post(server_entry(k, 0, "127.0.0.1:65536")).status, 422)
        self.assertEqual(self.post(server_entry(k, 0, "noport")).status, 422)
        self.assertEqual(self.post(client_entry(k, 0, [Key().pk for _ in range(65)])).status,
                         422)
        self.assertEqual(self.post(client_entry(k, 0, ["00" * 32])).status, 400)
        self.assertEqual(self.post(signed({**client_entry(k, 0, []), "sequence": -1},
                                          k)).status, 400)
        self.assertEqual(self.post(signed({**client_entry(k, 0, []), "sequence": 1.5},
                                          k)).status, 400)
        # Server entries' timestamps must be fresh.
        self.assertEqual(self.post(server_entry(k, 0, "1.2.3.4:80",
                                                ts=time.time() - 120)).status, 422)
        self.assertEqual(self.post(server_entry(k, 0, "1.2.3.4:80",
                                                ts=time.time() + 60)).status, 422)
        self.assertEqual(self.get(E + k.pk).status, 404)
        self.assertEqual(self.get(E + "abc").status, 400)

    def test_body_limits(self):
        k = Key()
        big = client_entry(k, 0, [])
        big["pad"] = "x" * (64 * 1024)
        r = self.post(big)
        self.assertEqual(r.status, 413)
        self.assertIn("error", r.json())
        self.assertEqual(self.get(E + k.pk).status, 404)

    def test_routes(self):
        r = self.get("/nope")
        self.assertEqual(r.status, 404)
        self.assertIn("error", r.json())
        self.assertEqual(request("PUT", self.base + "/dmsg-discovery/entries").status, 405)

    def test_lists(self):
        s1, s2, c1, c2 = Key(), Key(), Key(), Key()
        self.assertEqual(self.post(server_entry(s1, 0, "127.0.0.1:8081", 5)).status, 200)
        self.assertEqual(self.post(server_entry(s2, 0, "127.0.0.1:8082", 0)).status, 200)
        self.assertEqual(self.post(client_entry(c1, 0, [s1.pk])).status, 200)
        self.assertEqual(self.post(client_entry(c2, 0, [s1.pk, s2.pk])).status, 200)
        pks = self.get("/dmsg-discovery/entries").json()
        for k in (s1, s2, c1, c2):
            self.assertIn(k.pk, pks)
        allsrv = {e["static"] for e in self.get("/dmsg-discovery/all_servers").json()}
        self.assertTrue({s1.pk, s2.pk} <= allsrv)
        avail = {e["static"] for e in self.get("/dmsg-discovery/available_servers").json()}
        self.assertIn(s1.pk, avail)
        self.assertNotIn(s2.pk, avail)
        self.assertNotIn(c1.pk, allsrv)

        def clients(s):
            return sorted(e["static"] for e in
                          self.get("/dmsg-discovery/clients-by-server/" + s.pk).json())
        self.assertEqual(clients(s1), sorted([c1.pk, c2.pk]))
        self.assertEqual(clients(s2), [c2.pk])
        # c1 moves from s1 to s2; c2 drops s2.
        self.assertEqual(self.post(client_entry(c1, 1, [s2.pk])).status, 200)
        self.assertEqual(self.post(client_entry(c2, 1, [s1.pk])).status, 200)
        self.assertEqual(clients(s1), [c2.pk])
        self.assertEqual(clients(s2), [c1.pk])
        self.assertEqual(self.get("/dmsg-discovery/clients-by-server/" + Key().pk).json(), [])

    def test_delete_with_httpauth(self):
        k, s = Key(), Key()
        self.assertEqual(self.post(client_entry(k, 0, [s.pk])).status, 200)
        path = E + k.pk
        n0 = self.get("/security/nonces/" + k.pk).json()
        self.assertEqual(n0, {"edge": k.pk, "next_nonce": 0})
        # No headers, a bad signature, another key: refused, nothing changes.
        self.assertEqual(request("DELETE", self.base + path).status, 401)
        r = auth_request(self.base, "DELETE", path, k, nonce=0,
                         tamper=lambda h: h.update({"SW-Sig": "11" * 64}))
        self.assertEqual(r.status, 401)
        self.assertEqual(self.get("/security/nonces/" + k.pk).json()["next_nonce"], 0)
        other = Key()
        r = auth_request(self.base, "DELETE", path, other)
        self.assertEqual(r.status, 403)
        # A signature for another path does not carry over.
        r = auth_request(self.base, "DELETE", path, k, nonce=0,
                         tamper=lambda h: h.update({"SW-Sig": k.sign(
                             b"DELETE /elsewhere\n0\n")}))
        self.assertEqual(r.status, 401)
        # Valid: deleted.
        r = auth_request(self.base, "DELETE", path, k, nonce=0)
        self.assertEqual(r.status, 200)
        self.assertEqual(self.get(path).status, 404)
        self.assertNotIn(k.pk, [e["static"] for e in self.get(
            "/dmsg-discovery/clients-by-server/" + s.pk).json()])
        # Replaying nonce 0 is refused with the next nonce to use.
        r = auth_request(self.base, "DELETE", path, k, nonce=0)
        self.assertEqual(r.status, 401)
        self.assertEqual(r.json()["next_nonce"], 1)
        # A valid delete of a missing entry is 404.
        self.assertEqual(auth_request(self.base, "DELETE", path, k).status, 404)

    def test_health_and_metrics(self):
        h = self.get("/health")
        self.assertEqual(h.status, 200)
        body = h.json()
        self.assertEqual(body["status"], "ok")
        self.assertEqual(body["service"], "dmsg-discovery")
        self.assertEqual(body["checks"]["store"], "ok")
        self.assertIsInstance(body["uptime_s"], int)
        self.get("/dmsg-discovery/entries")
        m = self.get("/metrics").body.decode()
        self.assertIn("sw_http_requests_total{", m)
        self.assertIn('service="dmsg-discovery"', m)


def client_entry_sig(e):
    return e  # the stored entry is returned as posted, signature intact


class TestMemory(Base, unittest.TestCase):
    pass


class TestExpiry(unittest.TestCase):
    """Short TTLs: entries and every index forget an entry when it expires."""

    def run_expiry(self, extra):
        dd = Daemon("dmsg-discovery", "--entry-timeout-s", "1", "--server-entry-timeout-s", "1",
                    *extra)
        try:
            s, c = Key(), Key()
            self.assertEqual(request("POST", dd.base + E, server_entry(s, 0, "1.1.1.1:1")).status,
                             200)
            self.assertEqual(request("POST", dd.base + E, client_entry(c, 0, [s.pk])).status,
                             200)
            self.assertEqual(request("GET", dd.base + E + c.pk).status, 200)
            self.assertTrue(wait_until(
                lambda: request("GET", dd.base + E + c.pk).status == 404, 5))
            self.assertEqual(request("GET", dd.base + E + s.pk).status, 404)
            self.assertEqual(request("GET", dd.base + "/dmsg-discovery/entries").json(), [])
            self.assertEqual(request("GET", dd.base + "/dmsg-discovery/all_servers").json(), [])
            self.assertEqual(request("GET", dd.base + "/dmsg-discovery/clients-by-server/" +
                                     s.pk).json(), [])
        finally:
            dd.stop()

    def test_memory(self):
        self.run_expiry([])

    def test_redis(self):
        r = Redis()
        try:
            self.run_expiry(["--redis", r.url])
        finally:
            r.stop()


class TestRedis(OnRedis, Base, unittest.TestCase):

    def test_restart_keeps_entries(self):
        keys = [Key() for _ in range(20)]
        s = Key()
        for i, k in enumerate(keys):
            self.assertEqual(self.post(client_entry(k, 3, [s.pk])).status, 200)
        self.assertEqual(self.dd.stop(), 0)
        self.dd.start()
        self.__class__.base = self.dd.base
        for k in keys:
            r = self.get(E + k.pk)
            self.assertEqual(r.status, 200)
            self.assertEqual(r.json()["sequence"], 3)
        self.assertEqual(len(self.get("/dmsg-discovery/clients-by-server/" + s.pk).json()), 20)
        # The stored sequence still guards updates after the restart.
        self.assertEqual(self.post(client_entry(keys[0], 3, [s.pk])).status, 409)

    def test_redis_down_means_unhealthy(self):
        k = Key()
        self.assertEqual(self.post(client_entry(k, 0, [])).status, 200)
        self.redis.stop()
        try:
            self.assertTrue(wait_until(lambda: self.get("/health").status == 503, 10))
            h = self.get("/health").json()
            self.assertEqual(h["checks"]["store"], "down")
            self.assertEqual(self.get(E + k.pk).status, 503)
            self.assertEqual(self.post(client_entry(k, 1, [])).status, 503)
        finally:
            self.redis.start()
        self.assertTrue(wait_until(lambda: self.get("/health").status == 200, 15))
        # redis ran without persistence: the store came back empty, and works.
        self.assertEqual(self.post(client_entry(k, 2, [])).status, 200)
        self.assertEqual(self.get(E + k.pk).json()["sequence"], 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)

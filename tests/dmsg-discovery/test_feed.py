"""dmsg-discovery's clients-by-server CXO feed against its HTTP twin: clients
registered across two servers, one moved, one deleted, one expired; after
each step the feed (read over cxo_tcp_addr by the independent reader in
tests/py/cxo.py) and GET /dmsg-discovery/clients-by-server/{pk} agree.  On
redis, a restart rebuilds the same feed from the store with a higher seq."""

import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "py"))
from cxo import read_feed  # noqa: E402
from swclient import (Daemon, Key, Redis, auth_request, client_entry, free_port,  # noqa: E402
                      request, wait_until)

E = "/dmsg-discovery/entry/"
TTL = 4


class Base:
    redis = None
    extra = []

    def setUp(self):
        self.key = Key()
        self.cxo = "127.0.0.1:%d" % free_port()
        self.args = ["--entry-timeout-s", str(TTL), "--server-entry-timeout-s", "60",
                     "--cxo-tcp-addr", self.cxo, "--secret-key", self.key.seed,
                     "--public-key", self.key.pk] + self.extra
        self.dd = Daemon("dmsg-discovery", *self.args)
        self.servers = [Key().pk, Key().pk]

    def tearDown(self):
        rc = self.dd.stop()
        self.assertEqual(rc, 0)

    def post(self, e):
        r = request("POST", self.dd.base + E, e)
        self.assertEqual(r.status, 200, r.body)

    def feed(self):
        root, tree = read_feed(self.cxo, self.key.pk, 46)
        by = {}
        for path, val in tree.items():
            parts = path.split("/")
            self.assertEqual(len(parts), 4, path)
            self.assertEqual(parts[0], "clients-by-server")
            self.assertEqual(parts[2], parts[3][:2])
            by.setdefault(parts[1], {})[parts[3]] = json.loads(val)
        return root, by

    def http(self):
        by = {}
        for s in self.servers:
            r = request("GET", self.dd.base + "/dmsg-discovery/clients-by-server/" + s)
            self.assertEqual(r.status, 200)
            got = {e["static"]: e for e in r.json()}
            if got:
                by[s] = got
        return by

    def agree(self, extra=lambda f: True):
        state = {}

        def check():
            _, f = self.feed()
            state["feed"], state["http"] = f, self.http()
            return f == state["http"] and extra(f)
        ok = wait_until(check, 10, 0.1)
        self.assertTrue(ok, "feed %r\nhttp %r" % (state.get("feed"), state.get("http")))
        return state["feed"]

    def test_feed_follows_store(self):
        s1, s2 = self.servers
        c1, c2, c3 = Key(), Key(), Key()
        self.post(client_entry(c1, 0, [s1]))
        self.post(client_entry(c2, 0, [s1]))
        self.post(client_entry(c3, 0, [s1, s2]))
        f = self.agree()
        self.assertEqual(set(f[s1]), {c1.pk, c2.pk, c3.pk})
        self.assertEqual(set(f[s2]), {c3.pk})
        # Move c1 from s1 to s2.
        self.post(client_entry(c1, 1, [s2]))
        f = self.agree(lambda f: c1.pk in f.get(s2, {}))
        self.assertNotIn(c1.pk, f[s1])
        self.assertEqual(f[s2][c1.pk]["sequence"], 1)
        # Delete c2.
        r = auth_request(self.dd.base, "DELETE", E + c2.pk, c2)
        self.assertEqual(r.status, 200)
        f = self.agree(lambda f: c2.pk not in f.get(s1, {}))
        # Let the first three expire while a late one stays.
        c4 = Key()
        time.sleep(1.5)
        self.post(client_entry(c4, 0, [s2]))
        self.agree(lambda f: c4.pk in f.get(s2, {}) and c1.pk not in f.get(s2, {}) and
                   c3.pk not in f.get(s2, {}) and s1 not in f)
        self.agree(lambda f: f == {})


class MemoryStore(Base, unittest.TestCase):
    pass


class RedisStore(Base, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = Redis()
        cls.extra = ["--redis", cls.redis.url]

    @classmethod
    def tearDownClass(cls):
        cls.redis.stop()

    def test_restart_rebuilds(self):
        s1, _ = self.servers
        cs = [Key() for _ in range(20)]
        for c in cs:
            self.post(client_entry(c, 0, [s1]))
        before = self.agree(lambda f: len(f.get(s1, {})) == 20)
        root1, _ = self.feed()
        self.assertEqual(self.dd.stop(), 0)
        self.dd.start()
        after = self.agree(lambda f: len(f.get(s1, {})) == 20)
        self.assertEqual(before, after)
        root2, _ = self.feed()
        self.assertGreater(root2["seq"], root1["seq"])


if __name__ == "__main__":
    unittest.main()

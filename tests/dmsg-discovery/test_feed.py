"""dmsg-discovery's clients-by-server CXO feed against its HTTP twin: clients
registered across two servers, one moved, one deleted, one expired; after
each step the feed (read over cxo_tcp_addr by the independent reader in
tests/py/cxo.py) and GET /dmsg-discovery/clients-by-server/{pk} agree.  On
redis, a restart rebuilds the same feed from the store and serves the root it
served (the same tree: the root kept in the store), never a lower seq, and an
overflow of the mutation queue is counted and answered with a rebuild."""

import json
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "py"))
from cxo import read_feed  # noqa: E402
from swclient import (Daemon, Key, Redis, auth_request, client_entry, free_port,  # noqa: E402
                      metric, request, wait_until)

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
        # The same tree: the same root, or (something expired meanwhile) a higher seq.
        self.assertGreaterEqual(root2["seq"], root1["seq"])
        if root2["tree"] == root1["tree"]:
            self.assertEqual((root2["seq"], root2["sig"]), (root1["seq"], root1["sig"]))

    def test_queue_overflow_rebuilds(self):
        # The queue is drained by an event once per loop pass, so it overflows
        # when two writes complete in the same pass.  A redis pause lines the
        # writes up: their GETs wait in redis until the pause ends, are
        # answered in one reply, so dmsg-discovery sends the write
        # transactions back to back and reads their replies in one go; with
        # cxo_queue_max 1 the second mutation of that batch finds the queue
        # full.  The pause ends on its own (an UNPAUSE would wait behind it),
        # within the second after which a silent redis counts as down.
        self.assertEqual(self.dd.stop(), 0)
        self.dd = Daemon("dmsg-discovery", *(self.args + ["--cxo-queue-max", "1"]))
        s1, _ = self.servers
        self.agree()
        name = "dmsgd_feed_queue_overflows_total"
        overflows = metric(self.dd.base, name)
        rebuilds = metric(self.dd.base, "dmsgd_feed_rebuilds_total")
        cs = []
        for _ in range(5):
            batch = [Key() for _ in range(8)]
            status = []
            self.assertEqual(self.redis.cmd("CLIENT", "PAUSE", "700", "ALL"), "OK")
            ts = [threading.Thread(target=lambda c=c: status.append(request(
                "POST", self.dd.base + E, client_entry(c, 0, [s1]), timeout=20).status))
                for c in batch]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            self.assertEqual(status, [200] * len(batch))
            cs += batch
            if metric(self.dd.base, name) > overflows:
                break
        self.assertGreater(metric(self.dd.base, name), overflows)
        self.assertGreater(metric(self.dd.base, "dmsgd_feed_rebuilds_total"), rebuilds)
        f = self.agree(lambda f: len(f.get(s1, {})) == len(cs))
        self.assertEqual(set(f[s1]), {c.pk for c in cs})
        # Leave no entries behind for the next test's feed on the same redis.
        for c in cs:
            self.assertEqual(auth_request(self.dd.base, "DELETE", E + c.pk, c).status, 200)
        self.agree(lambda f: f == {})


if __name__ == "__main__":
    unittest.main()

"""The all-transports CXO feed on cxo_tcp_addr, read by the independent
reader in tests/py/cxo.py: every registered transport is the leaf
transports/<cc>/<t_id> holding the entry JSON as GET serves it; a delete
removes the leaf; an expired transport leaves on the next rebuild."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "py"))
sys.path.insert(0, os.path.dirname(__file__))
from cxo import read_feed  # noqa: E402
from swclient import Daemon, Key, Redis, auth_request, free_port, request  # noqa: E402
from swclient import wait_until  # noqa: E402
from tpclient import entry  # noqa: E402

FEED_PORT = 49


def path(t_id):
    return "transports/%s/%s" % (t_id[:2], t_id)


class Feed:
    extra = []

    def test_feed_follows_the_store(self):
        feed_key = Key()
        cxo = "127.0.0.1:%d" % free_port()
        td = Daemon("transport-discovery", "--secret-key", feed_key.seed, "--cxo-tcp-addr", cxo,
                    "--entry-timeout-s", "3", *self.extra)
        try:
            def tree():
                return read_feed(cxo, feed_key.pk, FEED_PORT)[1]
            a, b, c = Key(), Key(), Key()
            ab, ac = entry(a, b), entry(a, c, "sudph")
            self.assertEqual(auth_request(td.base, "POST", "/transports/", a, [ab, ac]).status,
                             201)
            self.assertTrue(wait_until(lambda: path(ac["t_id"]) in tree(), 5))
            t = tree()
            for e in (ab, ac):
                got = request("GET", td.base + "/transports/id:" + e["t_id"]).body
                self.assertEqual(t[path(e["t_id"])], got)
            self.assertEqual(auth_request(td.base, "DELETE", "/transports/id:" + ab["t_id"],
                                          b).status, 200)
            self.assertTrue(wait_until(lambda: path(ab["t_id"]) not in tree(), 5))
            self.assertIn(path(ac["t_id"]), tree())
            # Expiry leaves no write: the periodic rebuild drops it.
            self.assertTrue(wait_until(lambda: tree() == {}, 10))
        finally:
            self.assertEqual(td.stop(), 0)


class TestMemory(Feed, unittest.TestCase):
    pass


class TestRedis(Feed, unittest.TestCase):
    def setUp(self):
        self.redis = Redis()
        self.extra = ["--redis", self.redis.url]

    def tearDown(self):
        self.redis.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)

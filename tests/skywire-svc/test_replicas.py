"""cxo.md Replicas without Docker: two replicas each of transport-discovery,
service-discovery and dmsg-discovery on one redis with one key and
cxo_follow_ms; a write taken by replica A shows in replica B's feed, and
both feeds have the same tree hash, within 1 s.  Without cxo_follow_ms, B's
feed does not see A's write (what the option is for)."""

import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "py"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "transport-discovery"))
from cxo import read_feed  # noqa: E402
from swclient import (Key, Redis, auth_request, client_entry, free_port, http_up,  # noqa: E402
                      request, wait_until)
from tpclient import entry  # noqa: E402

BIN = os.path.join(os.environ.get("SW_BUILD", "build"), "bin")
FEEDS = {"transport-discovery": 49, "service-discovery": 48, "dmsg-discovery": 46}


class Replica:
    def __init__(self, name, key, redis, follow):
        self.port, self.cxo = free_port(), free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        args = [os.path.join(BIN, name), "--listen", "127.0.0.1:%d" % self.port, "--redis",
                redis, "--secret-key", key.seed, "--public-key", key.pk,
                "--cxo-tcp-addr", "127.0.0.1:%d" % self.cxo]
        if follow:
            args += ["--cxo-follow-ms", str(follow)]
        self.log = open(os.path.join(os.environ.get("SW_TMP", "/tmp"),
                                     "%s-replica-%d.log" % (name, self.port)), "ab")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log)
        assert wait_until(lambda: self.proc.poll() is not None or http_up(self.base + "/health"),
                          10)
        assert self.proc.poll() is None, "%s did not start" % name

    def stop(self):
        self.proc.terminate()
        rc = self.proc.wait(15)
        self.log.close()
        return rc


def write(name, base, i):
    """One record through base; returns the last path component of its leaf."""
    if name == "transport-discovery":
        a, b = Key(), Key()
        e = entry(a, b, "stcpr")
        assert auth_request(base, "POST", "/transports/", a, [e]).status == 201
        return e["t_id"]
    if name == "service-discovery":
        v = Key()
        r = auth_request(base, "POST", "/api/services", v,
                         {"address": v.pk + ":44", "type": "vpn", "version": "r%d" % i})
        assert r.status == 200, r.body
        return v.pk
    c = Key()
    assert request("POST", base + "/dmsg-discovery/entry/",
                   client_entry(c, 0, [Key().pk])).status == 200
    return c.pk


def leaves(addr, pk, port):
    root, tree = read_feed(addr, pk, port)
    return root["tree"], {p.rsplit("/", 1)[-1] for p in tree}


class TestReplicas(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = Redis()

    @classmethod
    def tearDownClass(cls):
        cls.redis.stop()

    def pair(self, name, follow, db):
        key = Key()
        url = "redis://127.0.0.1:%d/%d" % (self.redis.port, db)
        a = Replica(name, key, url, follow)
        b = Replica(name, key, url, follow)
        self.addCleanup(lambda: self.assertEqual(b.stop(), 0))
        self.addCleanup(lambda: self.assertEqual(a.stop(), 0))
        return key, a, b

    def test_feeds_follow_each_other(self):
        for db, name in enumerate(FEEDS):
            with self.subTest(service=name):
                key, a, b = self.pair(name, 100, db + 1)
                port = FEEDS[name]
                mine = {write(name, a.base, i) for i in range(3)}
                t0 = time.monotonic()
                addr_a, addr_b = "127.0.0.1:%d" % a.cxo, "127.0.0.1:%d" % b.cxo
                seen = {}

                def followed():
                    t = time.monotonic()  # when this read began: its answer is that old
                    if mine <= leaves(addr_b, key.pk, port)[1]:
                        seen["ms"] = (t - t0) * 1000
                        return True
                    return False

                self.assertTrue(wait_until(followed, 2.0), "%s: B's feed follows A" % name)
                self.assertLess(seen["ms"], 1000, "%s: within 1 s" % name)
                self.assertTrue(wait_until(lambda: leaves(addr_a, key.pk, port)[0] ==
                                           leaves(addr_b, key.pk, port)[0], 1.0),
                                "%s: both replicas' trees have the same hash" % name)
                print("%s: replica B's feed had A's writes %.0f ms after them"
                      % (name, seen["ms"]))

    def test_without_follow_b_does_not_see_a(self):
        key, a, b = self.pair("transport-discovery", 0, 9)
        wait_until(lambda: leaves("127.0.0.1:%d" % b.cxo, key.pk, 49) is not None, 5)
        t = write("transport-discovery", a.base, 0)
        self.assertTrue(wait_until(lambda: t in leaves("127.0.0.1:%d" % a.cxo, key.pk, 49)[1], 2))
        self.assertNotIn(t, leaves("127.0.0.1:%d" % b.cxo, key.pk, 49)[1])


if __name__ == "__main__":
    unittest.main(verbosity=2)

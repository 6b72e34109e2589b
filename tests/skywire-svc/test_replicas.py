"""cxo.md Replicas without Docker: two replicas each of transport-discovery,
service-discovery and dmsg-discovery on one redis with one key and
cxo_follow_ms; a write taken by replica A shows in replica B's feed, and
both feeds have the same tree hash, within 1 s.  Without cxo_follow_ms, B's
feed does not see A's write (what the option is for).

And seq: a subscriber of B (started later) moved to A, and later to B
restarted, takes every root it is handed there the way common/cxo_sub
does (the root it holds, or a higher seq), so it follows instead of
closing on "root seq did not grow"; B restarted publishes no lower seq
than before."""

import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "py"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "transport-discovery"))
from cxo import Reader, read_feed  # noqa: E402
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


class Follower:
    """A subscriber that keeps what it holds across connections and takes a
    root as common/cxo_sub does: the root it holds again (the same bytes,
    so the same signature), or one with a higher seq; anything else is the
    feed going back, which cxo_sub closes on ("root seq did not grow")."""

    def __init__(self, test, pk, port):
        self.test, self.pk, self.port = test, pk, port
        self.rd = None
        self.held = None
        self.refused = 0

    def take(self, r):
        if self.held is not None and r["sig"] != self.held["sig"]:
            if r["seq"] <= self.held["seq"]:
                self.refused += 1
                return False
        tree = self.rd.tree(r)
        if tree is None:  # superseded while fetching: the next root follows
            return False
        self.held, self.leaves = r, tree
        return True

    def connect(self, addr):
        if self.rd is not None:
            self.rd.close()
        self.rd = Reader(addr, self.pk, self.port)
        self.rd.last_seq = 0  # judged here, across connections
        return self.take(self.rd.next_root())

    def dial(self, addr):
        self.test.assertTrue(self.connect(addr), "first root of %s" % addr)

    def move(self, addr):
        """Redial to addr until a root there is taken (cxo_sub redials with
        backoff after a refusal); none may be refused."""
        self.test.assertTrue(wait_until(lambda: self.connect(addr), 2.0),
                             "the subscriber follows on %s" % addr)
        self.test.assertEqual(self.refused, 0, "a root with a lower seq (the feed went back)")

    def until(self, pred):
        """Take pushed roots on this connection until pred(tree) holds."""
        deadline = time.monotonic() + 5
        while not pred(self.leaves):
            self.test.assertLess(time.monotonic(), deadline, "no root with the change")
            self.rd.last_seq = 0
            self.test.assertTrue(self.take(self.rd.next_root()) or self.refused == 0,
                                 "a pushed root went back")
        self.test.assertEqual(self.refused, 0)

    def close(self):
        if self.rd is not None:
            self.rd.close()


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

    def test_subscriber_moves_between_replicas(self):
        for db, name in enumerate(FEEDS):
            with self.subTest(service=name):
                self.moves(name, db + 10)

    def moves(self, name, db):
        key = Key()
        url = "redis://127.0.0.1:%d/%d" % (self.redis.port, db)
        port = FEEDS[name]
        rep = {"a": Replica(name, key, url, 100)}
        rep["b"] = Replica(name, key, url, 100)  # later: a higher clock
        self.addCleanup(lambda: [r.stop() for r in rep.values() if r.proc.poll() is None])
        addr = {k: "127.0.0.1:%d" % r.cxo for k, r in rep.items()}
        follower = Follower(self, key.pk, port)
        mine = {write(name, rep["a"].base, 0)}
        self.assertTrue(wait_until(lambda: mine <= leaves(addr["b"], key.pk, port)[1] and
                                   leaves(addr["a"], key.pk, port)[0] ==
                                   leaves(addr["b"], key.pk, port)[0], 2.0),
                        "%s: both replicas have A's write" % name)
        follower.dial(addr["b"])
        b_before = follower.held["seq"]
        # B goes away; the subscriber redials and lands on A.
        self.assertEqual(rep["b"].stop(), 0)
        follower.move(addr["a"])
        # A write on A: the next root, on the same connection.
        mine.add(write(name, rep["a"].base, 1))
        follower.until(lambda t: mine <= {p.rsplit("/", 1)[-1] for p in t})
        # B restarted: no lower seq than it published, and the subscriber follows there.
        rep["b"] = Replica(name, key, url, 100)
        addr["b"] = "127.0.0.1:%d" % rep["b"].cxo
        self.assertTrue(wait_until(lambda: leaves(addr["b"], key.pk, port)[0] ==
                                   follower.held["tree"], 2.0),
                        "%s: B restarted has the tree" % name)
        self.assertGreaterEqual(read_feed(addr["b"], key.pk, port)[0]["seq"], b_before)
        self.assertEqual(rep["a"].stop(), 0)
        follower.move(addr["b"])
        print("%s: the subscriber followed B -> A -> B restarted, seq %d -> %d"
              % (name, b_before, follower.held["seq"]))
        follower.close()

    def test_without_follow_b_does_not_see_a(self):
        key, a, b = self.pair("transport-discovery", 0, 9)
        wait_until(lambda: leaves("127.0.0.1:%d" % b.cxo, key.pk, 49) is not None, 5)
        t = write("transport-discovery", a.base, 0)
        self.assertTrue(wait_until(lambda: t in leaves("127.0.0.1:%d" % a.cxo, key.pk, 49)[1], 2))
        self.assertNotIn(t, leaves("127.0.0.1:%d" % b.cxo, key.pk, 49)[1])


if __name__ == "__main__":
    unittest.main(verbosity=2)

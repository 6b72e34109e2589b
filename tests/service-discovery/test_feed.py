"""The services-by-pk CXO feed on cxo_tcp_addr, read by a minimal
subscriber written from cxo.md: SYN/ACK, SUB, a signed ROOT, RQOBJ down
services/<type>/<cc>/<pk> to the leaf, which is the stored service JSON;
a post pushes a newer root, a delete removes the leaf, and a service that
expires leaves the feed on the next rebuild."""

import os
import socket
import struct
import sys
import unittest

import nacl.signing

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "py"))
from swclient import Daemon, Key, auth_request, free_port, request  # noqa: E402

SYN, ACK, OK, ERR, SUB, ROOT, RQOBJ, OBJ = 3, 4, 5, 6, 7, 11, 12, 13
FEED_PORT = 48


class Sub:
    def __init__(self, port, feed_pk):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.seq = 0
        self.feed_pk = feed_pk
        self.send(SYN, struct.pack(">H", 1))
        self.assertion(self.recv()[0] == ACK, "ACK")
        self.send(SUB, bytes.fromhex(feed_pk) + struct.pack(">H", FEED_PORT))
        t = self.recv()[0]
        self.assertion(t == OK, "OK after SUB, got %d" % t)

    @staticmethod
    def assertion(c, what):
        assert c, what

    def send(self, typ, body):
        self.seq += 1
        self.s.sendall(struct.pack(">IIIB", 9 + len(body), self.seq, 0, typ) + body)

    def read(self, n):
        b = b""
        while len(b) < n:
            c = self.s.recv(n - len(b))
            assert c, "publisher closed"
            b += c
        return b

    def recv(self):
        ln, _, _, typ = struct.unpack(">IIIB", self.read(13))
        return typ, self.read(ln - 9)

    def root(self):
        """The next ROOT (skipping others), verified: (seq, tree hash)."""
        while True:
            typ, body = self.recv()
            if typ == ROOT:
                break
        assert len(body) == 179 and body[0] == 1
        assert body[1:33].hex() == self.feed_pk
        assert struct.unpack(">H", body[33:35])[0] == FEED_PORT
        nacl.signing.VerifyKey(body[1:33]).verify(body[:115], body[115:])
        return struct.unpack(">Q", body[35:43])[0], body[83:115]

    def obj(self, h):
        self.send(RQOBJ, h)
        while True:
            typ, body = self.recv()
            if typ == OBJ:
                return parse_obj(body)
            if typ == ERR:
                return None

    def leaf(self, tree, path):
        node = self.obj(tree)
        for name in path.split("/"):
            if node is None or name not in node:
                return None
            kind, v = node[name]
            if kind == 1:
                return v
            node = self.obj(v)
        return None

    def close(self):
        self.s.close()


def parse_obj(b):
    n, = struct.unpack(">I", b[:4])
    off, out = 4, {}
    for _ in range(n):
        nl, = struct.unpack(">H", b[off:off + 2])
        name = b[off + 2:off + 2 + nl].decode()
        off += 2 + nl
        kind = b[off]
        off += 1
        if kind == 0:
            out[name] = (0, b[off:off + 32])
            off += 32
        else:
            ll, = struct.unpack(">I", b[off:off + 4])
            out[name] = (1, b[off + 4:off + 4 + ll])
            off += 4 + ll
    return out


class TestFeed(unittest.TestCase):
    def test_feed_follows_the_store(self):
        me = Key()
        cxo = free_port()
        sd = Daemon("service-discovery", "--secret-key", me.seed, "--entry-timeout-s", "2",
                    "--cxo-tcp-addr", "127.0.0.1:%d" % cxo)
        sub = None
        try:
            v = Key()
            body = {"address": v.pk + ":44", "type": "vpn", "version": "1"}
            r = auth_request(sd.base, "POST", "/api/services", v, body)
            self.assertEqual(r.status, 200)
            sub = Sub(cxo, me.pk)
            path = "services/vpn/%s/%s" % (v.pk[:2], v.pk)
            seq, tree = sub.root()
            # The first root may predate the post (it is coalesced); wait for the leaf.
            while sub.leaf(tree, path) is None:
                seq, tree = sub.root()
            self.assertEqual(sub.leaf(tree, path), request(
                "GET", sd.base + "/api/services/%s:44?type=vpn" % v.pk).body)
            r = auth_request(sd.base, "DELETE", "/api/services/%s:44?type=vpn" % v.pk, v)
            self.assertEqual(r.status, 200)
            seq2, tree = sub.root()
            self.assertGreater(seq2, seq)
            self.assertIsNone(sub.leaf(tree, path))
            # Expiry: the periodic rebuild drops a service nobody deleted.
            self.assertEqual(auth_request(sd.base, "POST", "/api/services", v, body).status,
                             200)
            while sub.leaf(tree, path) is None:
                seq, tree = sub.root()
            while sub.leaf(tree, path) is not None:
                seq, tree = sub.root()
            self.assertEqual(request("GET", sd.base + "/api/services?type=vpn").json(), [])
        finally:
            if sub:
                sub.close()
            self.assertEqual(sd.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)

"""A tiny independent CXO reader written from cxo.md alone (PyNaCl for
Ed25519, hashlib for BLAKE2b-256): handshake, SUB, verify the ROOT, fetch
the tree by RQOBJ checking every hash, decode objects.  Counts the bytes
it moves, for the benchmark.  Runs on Debian's /usr/bin/python3."""

import hashlib
import socket
import struct

import nacl.exceptions
import nacl.signing

PING, PONG, SYN, ACK, OK, ERR, SUB, UNSUB, ROOT, RQOBJ, OBJ = 1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 13
ROOT_LEN = 1 + 32 + 2 + 8 + 8 + 32 + 32 + 64


class CxoError(Exception):
    pass


def h(b):
    return hashlib.blake2b(b, digest_size=32).digest()


def decode_obj(b):
    """-> list of (name bytes, kind, hash or leaf bytes); raises on anything malformed."""
    if len(b) < 4:
        raise CxoError("short object")
    (count,) = struct.unpack(">I", b[:4])
    p, out, prev = 4, [], None
    for _ in range(count):
        if p + 2 > len(b):
            raise CxoError("truncated")
        (nl,) = struct.unpack(">H", b[p:p + 2])
        name = b[p + 2:p + 2 + nl]
        if len(name) != nl or nl == 0 or b"/" in name or b"\0" in name:
            raise CxoError("bad name")
        if prev is not None and not prev < name:
            raise CxoError("unsorted")
        prev = name
        p += 2 + nl
        kind = b[p]
        p += 1
        if kind == 0:
            val = b[p:p + 32]
            if len(val) != 32:
                raise CxoError("truncated hash")
            p += 32
        elif kind == 1:
            (ll,) = struct.unpack(">I", b[p:p + 4])
            val = b[p + 4:p + 4 + ll]
            if len(val) != ll:
                raise CxoError("truncated leaf")
            p += 4 + ll
        else:
            raise CxoError("bad kind")
        out.append((name, kind, val))
    if p != len(b):
        raise CxoError("trailing bytes")
    return out


def decode_root(b):
    if len(b) != ROOT_LEN or b[0] != 1:
        raise CxoError("bad root")
    pk, port, seq, t, prev, tree, sig = struct.unpack(">32sHQQ32s32s64s", b[1:])
    return {"pk": pk, "port": port, "seq": seq, "time": t, "prev": prev, "tree": tree,
            "sig": sig}


class Reader:
    def __init__(self, addr, feed_pk_hex, port, timeout=5.0):
        host, p = addr.rsplit(":", 1)
        self.pk = bytes.fromhex(feed_pk_hex)
        self.port = port
        self.sock = socket.create_connection((host, int(p)), timeout=timeout)
        self.seq = 0
        self.buf = b""
        self.bytes_in = 0
        self.bytes_out = 0
        self.objs = {}      # hash -> bytes, kept across roots
        self.rqobj = 0
        self.last_seq = 0
        self.pushed = []    # ROOTs that arrived while waiting for something else
        syn = self.send(SYN, 0, struct.pack(">H", 1))
        t, _, rseq, _ = self.recv()
        if t != ACK or rseq != syn:
            raise CxoError("no ACK")
        sub = self.send(SUB, 0, self.pk + struct.pack(">H", port))
        t, _, rseq, body = self.recv()
        if t == ERR:
            raise CxoError("SUB refused: " + body.decode(errors="replace"))
        if t != OK or rseq != sub:
            raise CxoError("no OK")

    def close(self):
        try:
            self.send(UNSUB, 0, self.pk + struct.pack(">H", self.port))
        except OSError:
            pass
        self.sock.close()

    def send(self, t, rseq, body=b""):
        self.seq += 1
        m = struct.pack(">IIIB", 9 + len(body), self.seq, rseq, t) + body
        self.sock.sendall(m)
        self.bytes_out += len(m)
        return self.seq

    def _read(self, n):
        while len(self.buf) < n:
            d = self.sock.recv(1 << 16)
            if not d:
                raise CxoError("closed")
            self.bytes_in += len(d)
            self.buf += d
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self):
        (ln,) = struct.unpack(">I", self._read(4))
        if ln < 9 or ln > 4 * 1024 * 1024:
            raise CxoError("bad length")
        m = self._read(ln)
        seq, rseq, t = struct.unpack(">IIB", m[:9])
        return t, seq, rseq, m[9:]

    def next_root(self):
        """The next pushed ROOT, verified."""
        while True:
            if self.pushed:
                b = self.pushed.pop(0)
            else:
                t, seq, rseq, b = self.recv()
                if t == PING:
                    self.send(PONG, seq)
                    continue
                if t != ROOT:
                    raise CxoError("unexpected message %d" % t)
            r = decode_root(b)
            if r["pk"] != self.pk or r["port"] != self.port:
                raise CxoError("wrong feed")
            try:
                nacl.signing.VerifyKey(self.pk).verify(b[:-64], r["sig"])
            except nacl.exceptions.BadSignatureError:
                raise CxoError("bad signature")
            if r["seq"] <= self.last_seq:
                raise CxoError("seq did not grow")
            self.last_seq = r["seq"]
            return r

    def get(self, hs):
        """Fetch the hash hs (and check it); None if the publisher says not found."""
        if hs in self.objs:
            return self.objs[hs]
        s = self.send(RQOBJ, 0, hs)
        self.rqobj += 1
        while True:
            t, seq, rseq, b = self.recv()
            if t == ROOT and rseq == 0:
                self.pushed.append(b)
                continue
            if t == PING:
                self.send(PONG, seq)
                continue
            if rseq != s:
                raise CxoError("answer to something else")
            if t == ERR:
                return None
            if t != OBJ or h(b) != hs:
                raise CxoError("bad OBJ")
            decode_obj(b)
            self.objs[hs] = b
            return b

    def tree(self, r):
        """{path: leaf bytes} of root r, or None if an object was superseded."""
        out = {}

        def walk(hs, prefix):
            b = self.get(hs)
            if b is None:
                return False
            for name, kind, val in decode_obj(b):
                p = prefix + name.decode()
                if kind == 0:
                    if not walk(val, p + "/"):
                        return False
                else:
                    out[p] = val
            return True
        return out if walk(r["tree"], "") else None

    def snapshot(self):
        """Cycle read: the first complete tree (following newer roots if one is superseded)."""
        while True:
            r = self.next_root()
            t = self.tree(r)
            if t is not None:
                return r, t


def read_feed(addr, pk_hex, port):
    rd = Reader(addr, pk_hex, port)
    try:
        return rd.snapshot()
    finally:
        rd.close()

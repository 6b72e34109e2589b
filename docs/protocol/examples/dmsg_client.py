#!/usr/bin/python3
"""A minimal independent dmsg and CXO client, written from docs/protocol/ alone.

It shows every byte a client must get right: Noise XK to a dmsg-server (prologue dmsg/1),
frames, a signed client entry, a StreamRequest with Noise KK message 1, the StreamResponse,
DATA, CLOSE, and CXO (SYN, SUB, ROOT, RQOBJ, OBJ) over a stream. One stream at a time, no
flow control beyond the initial window, no retries: an illustration, not a library.

    dmsg_client.py [-d URL] dial PK PORT       send stdin's first line, print the reply line
    dmsg_client.py [-d URL] listen PORT        accept one stream, print what it sends, answer "bye"
    dmsg_client.py [-d URL] cxo PK PORT        print every leaf of a feed (46, 48, 49)

Needs Debian's python3-nacl. Checked against the e2e deployment (compose/deployment.json).
"""
import hashlib
import hmac
import json
import os
import socket
import struct
import sys
import time
import urllib.request

import nacl.bindings as nb
import nacl.signing

# ---------- Noise (revision 34), 25519 / ChaChaPoly / BLAKE2b ----------

HASHLEN = 64


def blake2b_64(data):
    return hashlib.blake2b(data, digest_size=64).digest()


def hkdf2(ck, ikm):
    temp = hmac.new(ck, ikm, hashlib.blake2b).digest()
    out1 = hmac.new(temp, b"\x01", hashlib.blake2b).digest()
    return out1, hmac.new(temp, out1 + b"\x02", hashlib.blake2b).digest()


class Cipher:
    """ChaChaPoly IETF; nonce = 4 zero bytes || 64-bit little-endian counter."""

    def __init__(self, key=None):
        self.key, self.n = key, 0

    def _nonce(self):
        self.n += 1
        return b"\0" * 4 + struct.pack("<Q", self.n - 1)

    def enc(self, ad, pt):
        return pt if self.key is None else \
            nb.crypto_aead_chacha20poly1305_ietf_encrypt(pt, ad, self._nonce(), self.key)

    def dec(self, ad, ct):
        return ct if self.key is None else \
            nb.crypto_aead_chacha20poly1305_ietf_decrypt(ct, ad, self._nonce(), self.key)


class Handshake:
    """XK (pre-message: responder static) or KK (both statics). Tokens as in the Noise spec."""

    def __init__(self, name, prologue, initiator, s_priv, rs, pre):
        n = name.encode()
        self.h = n + b"\0" * (HASHLEN - len(n))
        self.ck, self.c, self.initiator = self.h, Cipher(), initiator
        self.s = (s_priv, nb.crypto_scalarmult_base(s_priv))
        self.rs, self.e, self.re = rs, None, None
        self._mix_hash(prologue)
        for who in pre:  # "i": the initiator's static, "r": the responder's
            self._mix_hash(self.s[1] if (who == "i") == initiator else rs)

    def _mix_hash(self, d):
        self.h = blake2b_64(self.h + d)

    def _mix_key(self, ikm):
        self.ck, k = hkdf2(self.ck, ikm)
        self.c = Cipher(k[:32])

    def _dh(self, tok):
        mine_tok, theirs_tok = (tok[0], tok[1]) if self.initiator else (tok[1], tok[0])
        mine = self.e if mine_tok == "e" else self.s
        theirs = self.re if theirs_tok == "e" else self.rs
        return nb.crypto_scalarmult(mine[0], theirs)

    def write(self, tokens, payload=b""):
        out = b""
        for t in tokens:
            if t == "e":
                priv = os.urandom(32)
                self.e = (priv, nb.crypto_scalarmult_base(priv))
                out += self.e[1]
                self._mix_hash(self.e[1])
            elif t == "s":
                ct = self.c.enc(self.h, self.s[1])
                self._mix_hash(ct)
                out += ct
            else:
                self._mix_key(self._dh(t))
        ct = self.c.enc(self.h, payload)
        self._mix_hash(ct)
        return out + ct

    def read(self, tokens, msg):
        for t in tokens:
            if t == "e":
                self.re, msg = msg[:32], msg[32:]
                self._mix_hash(self.re)
            elif t == "s":
                n = 48 if self.c.key else 32
                ct, msg = msg[:n], msg[n:]
                self.rs = self.c.dec(self.h, ct)
                self._mix_hash(ct)
            else:
                self._mix_key(self._dh(t))
        pt = self.c.dec(self.h, msg)
        self._mix_hash(msg)
        return pt

    def split(self):
        """(send cipher, receive cipher)"""
        a, b = hkdf2(self.ck, b"")
        a, b = Cipher(a[:32]), Cipher(b[:32])
        return (a, b) if self.initiator else (b, a)


# ---------- keys, canonical JSON, HTTP (keys.md, services.md) ----------

class Key:
    def __init__(self, seed=None):
        self.sk = nacl.signing.SigningKey(seed or os.urandom(32))
        self.pk = bytes(self.sk.verify_key)

    def sign(self, msg):
        return self.sk.sign(msg).signature

    def x25519(self):
        return nb.crypto_sign_ed25519_sk_to_curve25519(bytes(self.sk) + self.pk)


def x25519_pk(pk):
    return nb.crypto_sign_ed25519_pk_to_curve25519(pk)


def canon(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def http(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def post_entry(disc, key, servers):
    pk = key.pk.hex()
    st, old = http("GET", disc + "/dmsg-discovery/entry/" + pk)
    entry = {"version": "0.0.1", "sequence": old["sequence"] + 1 if st == 200 else 1,
             "timestamp": int(time.time()), "static": pk,
             "client": {"delegated_servers": servers}}
    entry["signature"] = key.sign(canon(entry)).hex()
    st, ans = http("POST", disc + "/dmsg-discovery/entry/", entry)
    if st != 200:
        raise SystemExit("entry refused: %d %s" % (st, ans))


# ---------- dmsg (dmsg.md) ----------

OPEN, ACCEPT, REJECT, DATA, WINDOW, CLOSE, RESET, PING, PONG = range(1, 10)


class Session:
    """One Noise XK session to a dmsg-server; frames are type u8 | stream_id u32 | payload."""

    def __init__(self, key, server_pk, address):
        host, port = address.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        hs = Handshake("Noise_XK_25519_ChaChaPoly_BLAKE2b", b"dmsg/1", True,
                       key.x25519(), x25519_pk(server_pk), "r")
        self._put(hs.write(["e", "es"]))                 # message 1: 48 bytes
        hs.read(["e", "ee"], self._get())                # message 2: 48 bytes
        self._put(hs.write(["s", "se"], key.pk))         # message 3: 96 bytes
        self.tx, self.rx = hs.split()

    def _put(self, msg):
        self.sock.sendall(struct.pack(">H", len(msg)) + msg)

    def _exact(self, n):
        b = b""
        while len(b) < n:
            c = self.sock.recv(n - len(b))
            if not c:
                raise EOFError("session closed by the server")
            b += c
        return b

    def _get(self):
        return self._exact(struct.unpack(">H", self._exact(2))[0])

    def send(self, ftype, sid, payload=b""):
        self._put(self.tx.enc(b"", bytes([ftype]) + struct.pack(">I", sid) + payload))

    def frame(self):
        while True:
            pt = self.rx.dec(b"", self._get())
            ftype, sid = pt[0], struct.unpack(">I", pt[1:5])[0]
            if ftype == PING:
                self.send(PONG, 0, pt[5:])
                continue
            return ftype, sid, pt[5:]


def kk(key, remote_pk, initiator):
    return Handshake("Noise_KK_25519_ChaChaPoly_BLAKE2b", b"dmsg-stream/1", initiator,
                     key.x25519(), x25519_pk(remote_pk), "ir")


class Stream:
    def __init__(self, ses, sid, tx, rx):
        self.ses, self.sid, self.tx, self.rx = ses, sid, tx, rx

    def write(self, data):
        for i in range(0, len(data), 65498):
            self.ses.send(DATA, self.sid, self.tx.enc(b"", data[i:i + 65498]))

    def read(self):
        """Plaintext of the next DATA, b"" at CLOSE; RESET raises."""
        while True:
            ftype, sid, p = self.ses.frame()
            if sid != self.sid or ftype == WINDOW:
                continue
            if ftype == DATA:
                return self.rx.dec(b"", p)
            if ftype == CLOSE:
                return b""
            raise EOFError("stream ended by frame type %d" % ftype)


def dial(ses, key, peer, port, sid=1, src_port=49152):
    hs = kk(key, peer, True)
    body = bytes([1]) + struct.pack(">Q", int(time.time() * 1000)) + key.pk + \
        struct.pack(">H", src_port) + peer + struct.pack(">H", port)
    m1 = hs.write(["e", "es", "ss"])
    body += struct.pack(">H", len(m1)) + m1
    req = body + key.sign(body)                        # 191 bytes
    ses.send(OPEN, sid, req)
    ftype, _, p = ses.frame()
    if ftype == REJECT:
        raise SystemExit("REJECT %d: %s" % (p[0], p[1:].decode(errors="replace")))
    if ftype != ACCEPT or p[1:33] != hashlib.blake2b(req, digest_size=32).digest():
        raise SystemExit("bad answer to OPEN")
    nacl.signing.VerifyKey(peer).verify(p[:-64], p[-64:])
    nlen = struct.unpack(">H", p[33:35])[0]
    hs.read(["e", "ee", "se"], p[35:35 + nlen])
    return Stream(ses, sid, *hs.split())


def accept(ses, key):
    while True:
        ftype, sid, p = ses.frame()
        if ftype == OPEN:                              # an even id, chosen by the relay
            break
    src = p[9:41]
    nacl.signing.VerifyKey(src).verify(p[:-64], p[-64:])
    hs = kk(key, src, False)
    nlen = struct.unpack(">H", p[77:79])[0]
    hs.read(["e", "es", "ss"], p[79:79 + nlen])
    m2 = hs.write(["e", "ee", "se"])
    body = bytes([1]) + hashlib.blake2b(p, digest_size=32).digest() + \
        struct.pack(">H", len(m2)) + m2
    ses.send(ACCEPT, sid, body + key.sign(body))       # 147 bytes
    return Stream(ses, sid, *hs.split()), src


# ---------- CXO (cxo.md) ----------

def cxo_leaves(st, feed_pk, feed_port):
    state = {"seq": 0, "buf": b""}

    def send(mtype, body=b""):
        state["seq"] += 1
        st.write(struct.pack(">III", 9 + len(body), state["seq"], 0) + bytes([mtype]) + body)
        return state["seq"]

    def recv():
        while True:
            b = state["buf"]
            if len(b) >= 4 and len(b) >= 4 + struct.unpack(">I", b[:4])[0]:
                n = struct.unpack(">I", b[:4])[0]
                m, state["buf"] = b[4:4 + n], b[4 + n:]
                return m[8], struct.unpack(">I", m[4:8])[0], m[9:]
            data = st.read()
            if not data:
                raise EOFError("feed closed")
            state["buf"] += data

    send(3, struct.pack(">H", 1))
    assert recv()[0] == 4, "no ACK"
    send(7, feed_pk + struct.pack(">H", feed_port))
    mtype, _, body = recv()
    if mtype != 5:
        raise SystemExit("SUB refused: %s" % body.decode(errors="replace"))
    mtype, _, root = recv()
    assert mtype == 11 and len(root) == 179 and root[1:33] == feed_pk
    nacl.signing.VerifyKey(feed_pk).verify(root[:115], root[115:])
    todo, leaves = [(root[83:115], "")], []
    while todo:
        h, path = todo.pop()
        send(12, h)
        mtype, _, obj = recv()
        assert mtype == 13 and hashlib.blake2b(obj, digest_size=32).digest() == h
        off = 4
        for _ in range(struct.unpack(">I", obj[:4])[0]):
            nlen = struct.unpack(">H", obj[off:off + 2])[0]
            name = obj[off + 2:off + 2 + nlen].decode()
            kind, off = obj[off + 2 + nlen], off + 3 + nlen
            if kind == 0:
                todo.append((obj[off:off + 32], path + name + "/"))
                off += 32
            else:
                llen = struct.unpack(">I", obj[off:off + 4])[0]
                leaves.append((path + name, obj[off + 4:off + 4 + llen]))
                off += 4 + llen
    return struct.unpack(">Q", root[35:43])[0], sorted(leaves)


def main(argv):
    disc = "http://127.0.0.1:9090"
    if len(argv) > 2 and argv[0] == "-d":
        disc, argv = argv[1], argv[2:]
    if not argv or argv[0] not in ("dial", "listen", "cxo"):
        raise SystemExit(__doc__)
    key = Key()
    st, servers = http("GET", disc + "/dmsg-discovery/available_servers")
    if st != 200 or not servers:
        raise SystemExit("no dmsg server available")
    srv = servers[0]
    ses = Session(key, bytes.fromhex(srv["static"]), srv["server"]["address"])
    post_entry(disc, key, [srv["static"]])
    print("pk", key.pk.hex(), file=sys.stderr)
    if argv[0] == "dial":
        s = dial(ses, key, bytes.fromhex(argv[1]), int(argv[2]))
        s.write(sys.stdin.readline().encode())
        print(s.read().decode(errors="replace"), end="")
        ses.send(CLOSE, s.sid)
    elif argv[0] == "listen":
        s, src = accept(ses, key)
        print("stream from", src.hex(), file=sys.stderr)
        while True:
            data = s.read()
            if not data:
                break
            sys.stdout.write(data.decode(errors="replace"))
        s.write(b"bye\n")
        ses.send(CLOSE, s.sid)
        time.sleep(0.5)
    else:
        feed_pk, port = bytes.fromhex(argv[1]), int(argv[2])
        s = dial(ses, key, feed_pk, port)
        seq, leaves = cxo_leaves(s, feed_pk, port)
        print("root seq", seq, "leaves", len(leaves), file=sys.stderr)
        for path, leaf in leaves:
            print(path, leaf.decode(errors="replace"), sep="\t")
        ses.send(CLOSE, s.sid)


if __name__ == "__main__":
    main(sys.argv[1:])

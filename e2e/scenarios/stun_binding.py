#!/usr/bin/python3
"""A client behind the deployment's stun-server (UDP 127.0.0.1:3478) learns
the address it is seen from, as an RFC 5389 client (XOR-MAPPED-ADDRESS,
FINGERPRINT) and as a classic RFC 3489 one (MAPPED-ADDRESS); the
deployment has one address, so asking for a reply from another IP gets 420;
a stray datagram gets no answer and is counted on the service's own
/metrics (9095), and the shared /health lists the service."""
import os
import socket
import struct
import sys
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "py"))
from swclient import request  # noqa: E402

STUN = (os.environ.get("E2E_STUN_HOST", "127.0.0.1"), int(os.environ.get("E2E_STUN_PORT", "3478")))
STUN_HTTP = os.environ.get("E2E_STUN_HTTP", "http://127.0.0.1:9095")
HEALTH = os.environ.get("E2E_HEALTH", "http://127.0.0.1:9100")
MAGIC = 0x2112A442
# The address this client sends from (compose: the runner's own, not loopback).
SELF = os.environ.get("E2E_SELF_HOST", "127.0.0.1")


def check(cond, what):
    if not cond:
        sys.exit("FAIL: " + what)
    print("ok:", what)


def attrs_of(data):
    out, off = {}, 20
    while off + 4 <= len(data):
        t, n = struct.unpack(">HH", data[off:off + 4])
        out.setdefault(t, data[off + 4:off + 4 + n])
        off += 4 + ((n + 3) & ~3)
    return out


def addr(v, mask=None):
    port, raw = struct.unpack(">H", v[2:4])[0], v[4:]
    if mask:
        port ^= MAGIC >> 16
        raw = bytes(a ^ b for a, b in zip(raw, mask))
    return socket.inet_ntop(socket.AF_INET if v[1] == 1 else socket.AF_INET6, raw), port


def ask(s, data):
    s.sendto(data, STUN)
    reply, src = s.recvfrom(2048)
    return reply


def dropped(reason):
    for line in request("GET", STUN_HTTP + "/metrics").body.decode().splitlines():
        if line.startswith("stun_dropped_total{") and 'reason="%s"' % reason in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((SELF, 0))
s.settimeout(5)
me = s.getsockname()

# RFC 5389, with a FINGERPRINT
txid = os.urandom(12)
head = struct.pack(">HHI", 0x0001, 8, MAGIC) + txid
req = head + struct.pack(">HHI", 0x8028, 4, (zlib.crc32(head) ^ 0x5354554E) & 0xFFFFFFFF)
reply = ask(s, req)
a = attrs_of(reply)
check(struct.unpack(">H", reply[:2])[0] == 0x0101 and reply[8:20] == txid,
      "a Binding request is answered with a success for its transaction")
check(addr(a[0x0020], reply[4:20]) == me, "XOR-MAPPED-ADDRESS is the address the client is seen from")
check(addr(a[0x0001]) == me, "MAPPED-ADDRESS too")
check(struct.unpack(">I", a[0x8028])[0] == (zlib.crc32(reply[:-8]) ^ 0x5354554E) & 0xFFFFFFFF,
      "the reply's FINGERPRINT checks")
check(a.get(0x8022, b"").startswith(b"skywire-c"), "SOFTWARE names the server")

# RFC 3489: no magic cookie
tid = b"\x01" + os.urandom(15)
reply = ask(s, struct.pack(">HH", 0x0001, 0) + tid)
a = attrs_of(reply)
check(reply[4:20] == tid and addr(a[0x0001]) == me and 0x0020 not in a,
      "a classic RFC 3489 client gets MAPPED-ADDRESS and no 5389 attribute")

# One address: a reply from another IP cannot be given
reply = ask(s, struct.pack(">HHI", 0x0001, 8, MAGIC) + os.urandom(12) +
            struct.pack(">HHI", 0x0003, 4, 0x06))
a = attrs_of(reply)
check(struct.unpack(">H", reply[:2])[0] == 0x0111 and a[0x0009][2:4] == b"\x04\x14" and
      a[0x000A][:2] == b"\x00\x03", "CHANGE-REQUEST without alternates: 420 naming it")

# Garbage: no answer, counted
before = dropped("not_stun")
s.sendto(b"\xff" * 40, STUN)
s.settimeout(0.3)
try:
    s.recvfrom(2048)
    check(False, "garbage is not answered")
except socket.timeout:
    check(True, "garbage is not answered")
check(dropped("not_stun") == before + 1, "and is counted in stun_dropped_total")
h = request("GET", STUN_HTTP + "/health")
check(h.status == 200 and h.json()["checks"]["udp"] == "ok", "the service's own /health is ok")

if os.environ.get("E2E_MODE") == "split":
    sys.exit(0)  # no shared mux when every service runs alone
names = {x["service"] for x in request("GET", HEALTH + "/health").json()["services"]}
check("stun-server" in names, "shared /health lists stun-server")

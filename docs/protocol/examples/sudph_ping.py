#!/usr/bin/python3
"""Open a sudph transport to a visor and ping it over route 0, from docs/protocol/ alone.

    sudph_ping.py [-r RESOLVER_URL] VISOR_PK

Resolves the visor (signed GET /resolve/sudph/{pk}, keys.md), runs HS1/HS2/HS3 (Noise XK,
prologue sudph/1) to the address the resolver saw, then sends one PING packet inside a DATA
datagram (explicit nonce, retransmission header) and waits for the PONG (visor.md, sudph).
Same host only: it does not bind at the resolver or punch. Uses dmsg_client.py's Noise.
"""
import json
import os
import socket
import struct
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dmsg_client as D  # noqa: E402

HS1, HS2, HS3, DATA = 0x11, 0x12, 0x13, 0x14


def signed_get(base, path, key):
    """httpauth: nonce from /security/nonces, signature over "GET path\\nNONCE\\n"."""
    pk = key.pk.hex()
    with urllib.request.urlopen(base + "/security/nonces/" + pk, timeout=5) as r:
        nonce = str(json.load(r)["next_nonce"])
    sig = key.sign(b"GET " + path.encode() + b"\n" + nonce.encode() + b"\n").hex()
    req = urllib.request.Request(base + path, headers={
        "SW-Public": pk, "SW-Nonce": nonce, "SW-Sig": sig})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.load(r)


def main(argv):
    resolver = "http://127.0.0.1:9093"
    if len(argv) > 2 and argv[0] == "-r":
        resolver, argv = argv[1], argv[2:]
    if len(argv) != 1:
        raise SystemExit(__doc__)
    peer = bytes.fromhex(argv[0])
    key = D.Key()
    binding = signed_get(resolver, "/resolve/sudph/" + argv[0], key)
    host, port = binding["remote_addr"].rsplit(":", 1)
    addr = (host.strip("[]"), int(port))
    sock = socket.socket(socket.AF_INET6 if ":" in addr[0] else socket.AF_INET,
                         socket.SOCK_DGRAM)
    sock.settimeout(1)

    hs = D.Handshake("Noise_XK_25519_ChaChaPoly_BLAKE2b", b"sudph/1", True,
                     key.x25519(), D.x25519_pk(peer), "r")
    sid_i = struct.unpack(">I", os.urandom(4))[0] or 1           # ours: the peer writes it
    hs1 = bytes([HS1]) + struct.pack(">I", sid_i) + hs.write(["e", "es"])   # 53 bytes
    for _ in range(25):                                          # resent every 200 ms, 5 s
        sock.sendto(hs1, addr)
        try:
            d, src = sock.recvfrom(65536)
        except socket.timeout:
            continue
        if d[0] == HS2 and len(d) == 57 and struct.unpack(">I", d[1:5])[0] == sid_i:
            break
    else:
        raise SystemExit("no HS2")
    sid_r = struct.unpack(">I", d[5:9])[0]                       # theirs: we write it
    hs.read(["e", "ee"], d[9:])
    hs3 = bytes([HS3]) + struct.pack(">I", sid_r) + hs.write(["s", "se"], key.pk)  # 101
    tx, rx = hs.split()

    # DATA: kind | sid u32 | nonce u64 (big-endian, = the Noise counter) | AEAD, header as AD.
    # Plaintext: ack u32 | sack u32 | seq u32 | packet (type u8 | route_id u32 | payload).
    def send_data(seq, ack, packet):
        head = bytes([DATA]) + struct.pack(">IQ", sid_r, tx.n)
        sock.sendto(head + tx.enc(head, struct.pack(">III", ack, 0, seq) + packet), src)

    token = os.urandom(8)
    start = time.monotonic()
    sock.sendto(hs3, src)
    send_data(1, 1, bytes([3]) + struct.pack(">I", 0) + token)  # PING on route 0, seq 1
    while time.monotonic() - start < 5:
        try:
            d, _ = sock.recvfrom(65536)
        except socket.timeout:
            sock.sendto(hs3, src)                                # HS3 resent until DATA
            continue
        if d[0] != DATA or struct.unpack(">I", d[1:5])[0] != sid_i:
            continue
        rx.n = struct.unpack(">Q", d[5:13])[0]
        plain = rx.dec(d[:13], d[13:])
        ack, sack, seq = struct.unpack(">III", plain[:12])
        packet = plain[12:]
        if seq == 0:
            continue                                             # a pure ack (HS3's answer)
        send_data(0, seq + 1, b"")                               # ack it
        if packet[:1] == b"\x04" and packet[5:] == token:
            print("PONG in %.1f ms" % ((time.monotonic() - start) * 1000))
            return
    raise SystemExit("no PONG")


if __name__ == "__main__":
    main(sys.argv[1:])

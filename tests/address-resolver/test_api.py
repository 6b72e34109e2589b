"""address-resolver over real HTTP and UDP, on the embedded store and on
redis, driven by the independent client (tests/py/swclient.py): stcpr binds
and resolves with httpauth and the same-NAT rule (the caller's IP varied by
binding the client socket to 127.0.0.2), sudph datagrams (bind, heartbeat,
expiry, unbind, signed acks and dials, forged and oversize ones dropped and
counted), expiry on both stores, restart and replicas on redis."""

import http.client
import json
import os
import socket
import sys
import time
import unittest
import urllib.parse

import nacl.exceptions
import nacl.signing

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "py"))
from swclient import (Daemon, Key, OnRedis, Redis, auth_request, metric,  # noqa: E402
                      request, wait_until)

RESOLVER = Key()  # the resolver's identity, so its datagrams can be verified


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(*extra, key=RESOLVER):
    udp = free_udp_port()
    d = Daemon("address-resolver", "--udp-listen", "127.0.0.1:%d" % udp,
               "--secret-key", key.seed, *extra)
    d.udp = ("127.0.0.1", udp)
    return d


def auth_from(src, base, method, path, key, body=b""):
    """httpauth from a chosen source IP (all of 127/8 is loopback on Linux)."""
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
    nonce = request("GET", base + "/security/nonces/" + key.pk).json()["next_nonce"]
    msg = method.encode() + b" " + path.encode() + b"\n" + str(nonce).encode() + b"\n" + body
    hdrs = {"SW-Public": key.pk, "SW-Nonce": str(nonce), "SW-Sig": key.sign(msg)}
    if body:
        hdrs["Content-Type"] = "application/json"
    u = urllib.parse.urlsplit(base)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=10, source_address=(src, 0))
    try:
        c.request(method, path, body or None, hdrs)
        r = c.getresponse()
        return r.status, json.loads(r.read() or b"null")
    finally:
        c.close()


def dgram(key, typ, obj, raw=None):
    js = raw if raw is not None else json.dumps(obj).encode()
    pk = bytes.fromhex(key.pk)
    return bytes([typ]) + pk + key.sk.sign(bytes([typ]) + pk + js).signature + js


def open_verified(data):
    """A resolver datagram: (type, json) after checking its layout and signature."""
    assert len(data) >= 97, data
    typ, pk, sig, js = data[0], data[1:33], data[33:97], data[97:]
    assert pk.hex() == RESOLVER.pk, "datagram from another key"
    nacl.signing.VerifyKey(pk).verify(bytes([typ]) + pk + js, sig)
    return typ, json.loads(js)


class Visor:
    """A visor's sudph socket."""

    def __init__(self, ar, src="127.0.0.1"):
        self.key = Key()
        self.ar = ar
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind((src, 0))
        self.s.settimeout(3)
        self.addr = "%s:%d" % self.s.getsockname()

    def send(self, typ, obj=None, raw=None, key=None):
        self.s.sendto(dgram(key or self.key, typ, obj or {}, raw), self.ar.udp)

    def recv(self):
        data, _ = self.s.recvfrom(4096)
        return open_verified(data)

    def no_answer(self, timeout=0.3):
        self.s.settimeout(timeout)
        try:
            self.s.recvfrom(4096)
            return False
        except socket.timeout:
            return True
        finally:
            self.s.settimeout(3)

    def bind(self, port=5000, local=()):
        self.send(1, {"port": port, "local_addresses": list(local)})
        return self.recv()

    def close(self):
        self.s.close()


class Base:
    extra = []

    @classmethod
    def setUpClass(cls):
        cls.ar = start(*cls.extra)
        cls.base = cls.ar.base

    @classmethod
    def tearDownClass(cls):
        rc = cls.ar.stop()
        assert rc == 0, "graceful stop must exit 0, got %r" % rc

    def transports(self):
        r = request("GET", self.base + "/transports")
        self.assertEqual(r.status, 200)
        return r.json()

    # stcpr

    def test_stcpr_bind_resolve_same_nat(self):
        v, c = Key(), Key()
        body = {"port": 7777, "local_addresses": ["192.168.1.2", "fd00::2"]}
        st, b = auth_from("127.0.0.1", self.base, "POST", "/bind/stcpr", v, body)
        self.assertEqual(st, 200)
        self.assertEqual(b, {"pk": v.pk, "remote_addr": "127.0.0.1:7777", "port": 7777,
                             "local_addresses": ["192.168.1.2", "fd00::2"]})
        self.assertIn(v.pk, self.transports()["stcpr"])
        # Same IP as the binding: same NAT, local addresses included.
        st, b = auth_from("127.0.0.1", self.base, "GET", "/resolve/stcpr/" + v.pk, c)
        self.assertEqual(st, 200)
        self.assertEqual(b["is_local"], True)
        self.assertEqual(b["local_addresses"], ["192.168.1.2", "fd00::2"])
        self.assertEqual(b["remote_addr"], "127.0.0.1:7777")
        # Another IP: no local addresses.
        st, b = auth_from("127.0.0.2", self.base, "GET", "/resolve/stcpr/" + v.pk, c)
        self.assertEqual(st, 200)
        self.assertEqual(b, {"pk": v.pk, "remote_addr": "127.0.0.1:7777", "port": 7777,
                             "is_local": False})
        # Re-binding from elsewhere moves the remote address to what the server sees.
        st, b = auth_from("127.0.0.2", self.base, "POST", "/bind/stcpr", v, body)
        self.assertEqual((st, b["remote_addr"]), (200, "127.0.0.2:7777"))
        st, b = auth_from("127.0.0.2", self.base, "GET", "/resolve/stcpr/" + v.pk, c)
        self.assertTrue(b["is_local"])
        # Unbind.
        r = auth_request(self.base, "DELETE", "/bind/stcpr", v)
        self.assertEqual((r.status, r.json()), (200, {"deleted": True}))
        self.assertEqual(auth_request(self.base, "GET", "/resolve/stcpr/" + v.pk, c).status,
                         404)
        self.assertNotIn(v.pk, self.transports()["stcpr"])
        r = auth_request(self.base, "DELETE", "/bind/stcpr", v)
        self.assertEqual((r.status, r.json()), (200, {"deleted": False}))

    def test_stcpr_errors(self):
        v = Key()
        body = json.dumps({"port": 1, "local_addresses": []}).encode()
        self.assertEqual(request("POST", self.base + "/bind/stcpr", body).status, 401)
        r = auth_request(self.base, "POST", "/bind/stcpr", v, body, nonce=0,
                         tamper=lambda h: h.update({"SW-Sig": "22" * 64}))
        self.assertEqual(r.status, 401)
        self.assertIn("error", r.json())
        self.assertEqual(auth_request(self.base, "POST", "/bind/stcpr", v, body,
                                      nonce=0).status, 200)
        r = auth_request(self.base, "POST", "/bind/stcpr", v, body, nonce=0)  # replay
        self.assertEqual((r.status, r.json()["next_nonce"]), (401, 1))
        for raw in (b"{", b"nope", b"", b"[]"):
            r = auth_request(self.base, "POST", "/bind/stcpr", v, raw)
            self.assertEqual(r.status, 400, raw)
            self.assertIn("error", r.json())
        for obj, status in (({}, 400), ({"port": "1"}, 400), ({"port": 1.5}, 400),
                            ({"port": 0}, 422), ({"port": 65536}, 422),
                            ({"port": 1, "local_addresses": "x"}, 400),
                            ({"port": 1, "local_addresses": ["1.2.3"]}, 422),
                            ({"port": 1, "local_addresses": ["10.0.0.1"] * 17}, 422)):
            r = auth_request(self.base, "POST", "/bind/stcpr", v, obj)
            self.assertEqual(r.status, status, obj)
        r = auth_request(self.base, "POST", "/bind/stcpr", v,
                         {"port": 1, "pad": "x" * (64 * 1024)})
        self.assertEqual(r.status, 413)
        # Resolves are signed too, and keys in URLs are lowercase hex.
        self.assertEqual(request("GET", self.base + "/resolve/stcpr/" + v.pk).status, 401)
        self.assertEqual(auth_request(self.base, "GET", "/resolve/stcpr/" + v.pk.upper(),
                                      v).status, 400)
        self.assertEqual(auth_request(self.base, "GET", "/resolve/stcpr/" + Key().pk,
                                      v).status, 404)
        self.assertEqual(auth_request(self.base, "GET", "/resolve/sudph/" + Key().pk,
                                      v).status, 404)
        self.assertEqual(request("DELETE", self.base + "/bind/stcpr").status, 401)
        self.assertEqual(request("PUT", self.base + "/transports").status, 405)

    # sudph

    def test_sudph_bind_heartbeat_unbind(self):
        v = Visor(self.ar)
        try:
            typ, ack = v.bind(6000, ["10.1.1.1"])
            self.assertEqual((typ, ack), (4, {"addr": v.addr}))
            self.assertIn(v.key.pk, self.transports()["sudph"])
            v.send(2)
            self.assertEqual(v.recv(), (4, {"addr": v.addr}))
            st, b = auth_from("127.0.0.2", self.base, "GET", "/resolve/sudph/" + v.key.pk,
                              Key())
            self.assertEqual(st, 200)
            self.assertEqual(b, {"pk": v.key.pk, "remote_addr": v.addr, "port": 6000,
                                 "is_local": False})
            v.recv()  # the dial that resolve sent
            v.send(3)
            self.assertTrue(v.no_answer(), "unbind is not answered")
            self.assertTrue(wait_until(lambda: v.key.pk not in self.transports()["sudph"], 5))
            self.assertEqual(auth_request(self.base, "GET", "/resolve/sudph/" + v.key.pk,
                                          Key()).status, 404)
            # A heartbeat without a binding gets no ack, and is counted.
            before = metric(self.base, "ar_udp_dropped_total", 'reason="unbound"')
            v.send(2)
            self.assertTrue(v.no_answer())
            self.assertEqual(metric(self.base, "ar_udp_dropped_total", 'reason="unbound"'),
                             before + 1)
        finally:
            v.close()

    def test_sudph_dial_on_resolve(self):
        target, caller = Visor(self.ar), Visor(self.ar)
        try:
            target.bind(6001, ["10.0.0.5"])
            caller.bind(6002)
            r = auth_request(self.base, "GET", "/resolve/sudph/" + target.key.pk, caller.key)
            self.assertEqual(r.status, 200)
            self.assertEqual(r.json()["remote_addr"], target.addr)
            self.assertTrue(r.json()["is_local"])
            self.assertEqual(r.json()["local_addresses"], ["10.0.0.5"])
            typ, dial = target.recv()
            self.assertEqual((typ, dial), (5, {"pk": caller.key.pk, "addr": caller.addr}))
            # A caller without a sudph binding is named with its IP and port 0.
            other = Key()
            r = auth_request(self.base, "GET", "/resolve/sudph/" + target.key.pk, other)
            self.assertEqual(r.status, 200)
            self.assertEqual(target.recv(), (5, {"pk": other.pk, "addr": "127.0.0.1:0"}))
        finally:
            target.close()
            caller.close()

    def test_sudph_bad_datagrams_dropped_and_counted(self):
        v = Visor(self.ar)
        try:
            def count(reason):
                return metric(self.base, "ar_udp_dropped_total", 'reason="%s"' % reason)
            bad_sig, oversize, malformed = count("bad_signature"), count("oversize"), \
                count("malformed")
            forged = bytearray(dgram(v.key, 1, {"port": 1, "local_addresses": []}))
            forged[40] ^= 1
            v.s.sendto(bytes(forged), self.ar.udp)
            # Signed by another key than the one it names.
            other = Key()
            d = dgram(other, 1, {"port": 1})
            v.s.sendto(d[:1] + bytes.fromhex(v.key.pk) + d[33:], self.ar.udp)
            big = {"port": 1, "local_addresses": [], "pad": "x" * 1200}
            v.send(1, big)
            v.send(1, raw=b"{" + b" " * (1200 - 97 - 2) + b"}")  # exactly 1200: within bounds
            v.s.sendto(b"\x01short", self.ar.udp)
            v.send(9, {})
            v.send(1, raw=b"not json")
            v.send(1, {"port": 0})
            v.send(1, {"port": 1, "local_addresses": ["nope"]})
            self.assertTrue(wait_until(lambda: count("malformed") >= malformed + 6 and
                                       count("bad_signature") >= bad_sig + 2 and
                                       count("oversize") >= oversize + 1, 5))
            self.assertEqual(count("bad_signature"), bad_sig + 2)
            self.assertEqual(count("oversize"), oversize + 1)
            # The 1200-byte one had no port: malformed, not oversize.
            self.assertEqual(count("malformed"), malformed + 6)
            self.assertTrue(v.no_answer())
            self.assertNotIn(v.key.pk, self.transports()["sudph"])
            # The socket still serves good datagrams.
            self.assertEqual(v.bind()[0], 4)
        finally:
            v.close()

    def test_health_and_metrics(self):
        h = request("GET", self.base + "/health")
        self.assertEqual(h.status, 200)
        self.assertEqual(h.json()["service"], "address-resolver")
        self.assertEqual(h.json()["checks"]["udp"], "ok")
        m = request("GET", self.base + "/metrics").body.decode()
        self.assertIn('service="address-resolver"', m)


class TestMemory(Base, unittest.TestCase):
    pass


class TestRedis(OnRedis, Base, unittest.TestCase):

    def test_restart_keeps_bindings(self):
        v = Key()
        r = auth_request(self.base, "POST", "/bind/stcpr", v, {"port": 9, "local_addresses": []})
        self.assertEqual(r.status, 200)
        self.assertEqual(self.ar.stop(), 0)
        self.ar.start()
        self.__class__.base = self.ar.base
        r = auth_request(self.base, "GET", "/resolve/stcpr/" + v.pk, Key())
        self.assertEqual((r.status, r.json()["remote_addr"]), (200, "127.0.0.1:9"))

    def test_replicas_share_sudph(self):
        other = start("--redis", self.redis.url)
        v = Visor(self.ar)
        try:
            v.bind(6100)
            self.assertIn(v.key.pk, request("GET", other.base + "/transports").json()["sudph"])
            r = auth_request(other.base, "GET", "/resolve/sudph/" + v.key.pk, Key())
            self.assertEqual((r.status, r.json()["remote_addr"]), (200, v.addr))
            self.assertEqual(v.recv()[0], 5)  # the dial came from the other replica
        finally:
            v.close()
            self.assertEqual(other.stop(), 0)


class TestExpiry(unittest.TestCase):
    """One-second timeouts: stcpr bindings without a re-post and sudph ones
    without a heartbeat are forgotten, by the record and by /transports."""

    def run_expiry(self, extra):
        ar = start("--entry-timeout-s", "1", "--sudph-timeout-s", "2", *extra)
        v, kept = Visor(ar), Visor(ar)
        try:
            s = Key()
            self.assertEqual(auth_request(ar.base, "POST", "/bind/stcpr", s,
                                          {"port": 1}).status, 200)
            v.bind()
            kept.bind()

            def gone(pk, net):
                return (pk not in request("GET", ar.base + "/transports").json()[net] and
                        auth_request(ar.base, "GET", "/resolve/%s/%s" % (net, pk),
                                     Key()).status == 404)
            self.assertTrue(wait_until(lambda: gone(s.pk, "stcpr"), 5))
            # kept heartbeats (as a visor does, paced, not to synchronise) and outlives v.
            end = time.monotonic() + 6
            while not gone(v.key.pk, "sudph"):
                self.assertLess(time.monotonic(), end, "sudph binding did not expire")
                kept.send(2)
                self.assertEqual(kept.recv()[0], 4)
                time.sleep(0.25)
            self.assertIn(kept.key.pk, request("GET", ar.base + "/transports").json()["sudph"])
        finally:
            v.close()
            kept.close()
            self.assertEqual(ar.stop(), 0)

    def test_memory(self):
        self.run_expiry([])

    def test_redis(self):
        r = Redis()
        try:
            self.run_expiry(["--redis", r.url])
        finally:
            r.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)

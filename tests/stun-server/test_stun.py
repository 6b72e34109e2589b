"""stun-server over real UDP, black box: build/bin/stun-server on free ports
with a second loopback IP (127.0.0.2) and an alternate port, driven by a
client written here from the RFCs with raw sockets and struct.

A classic RFC 3489 client runs its NAT-type tests (I, II, I' at
CHANGED-ADDRESS, III) and finds "open internet" on loopback; the same client
behind a simulated port-restricted filter (it drops replies from addresses
it did not send to) finds "port restricted cone", which shows the server
really answers from the changed IP and port.  RFC 5389 requests get
XOR-MAPPED-ADDRESS, RESPONSE-ORIGIN, OTHER-ADDRESS and a FINGERPRINT that
checks; unknown comprehension-required attributes get 420; garbage gets
nothing and is counted in /metrics; IPv6; a server without alternates
answers CHANGE-REQUEST with 420; bad configurations are refused."""

import os
import socket
import struct
import subprocess
import sys
import time
import unittest
import urllib.request
import zlib

MAGIC = 0x2112A442
BUILD = os.environ.get("SW_BUILD", "build")
TMP = os.environ.get("SW_TMP", "/tmp")

MAPPED, CHANGE_REQUEST, SOURCE, CHANGED = 0x0001, 0x0003, 0x0004, 0x0005
ERROR_CODE, UNKNOWN = 0x0009, 0x000A
XOR_MAPPED, SOFTWARE, FINGERPRINT = 0x0020, 0x8022, 0x8028
RESPONSE_ORIGIN, OTHER_ADDRESS = 0x802B, 0x802C


def free_udp_port(ips=("127.0.0.1", "127.0.0.2")):
    """A port free for UDP on every one of ips."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((ips[0], 0))
            port = s.getsockname()[1]
        try:
            for ip in ips:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as t:
                    t.bind((ip, port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free UDP port")


def free_tcp_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, r.read().decode()


class Server:
    """build/bin/stun-server on free ports; stopped with SIGTERM."""

    def __init__(self, *extra, listen_ip="127.0.0.1", alternates=True):
        self.port = free_udp_port()
        self.alt = free_udp_port() if alternates else None
        self.http = free_tcp_port()
        host = "[%s]" % listen_ip if ":" in listen_ip else listen_ip
        args = [os.path.join(BUILD, "bin", "stun-server"), "--listen",
                "%s:%d" % (host, self.port), "--health-listen", "127.0.0.1:%d" % self.http]
        if alternates:
            args += ["--secondary-ip", "127.0.0.2", "--alt-port", str(self.alt)]
        self.log = open("%s/stun-server-%d.log" % (TMP, self.http), "ab")
        self.proc = subprocess.Popen(args + list(extra), stdout=self.log, stderr=self.log)
        self.base = "http://127.0.0.1:%d" % self.http
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "stun-server exited"
            try:
                if http_get(self.base + "/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.02)
        raise AssertionError("stun-server not healthy")

    def metric(self, series):
        for line in http_get(self.base + "/metrics")[1].splitlines():
            if line.startswith(series.split("{")[0] + "{") and all(
                    part in line for part in series.split("{")[1].rstrip("}").split(",")):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def stop(self):
        self.proc.terminate()
        rc = self.proc.wait(15)
        self.log.close()
        return rc


# ---------- the message format, from RFC 5389 / 3489 ----------

def attr(typ, value):
    pad = (4 - len(value) % 4) % 4
    return struct.pack(">HH", typ, len(value)) + value + b"\0" * pad


def message(typ, txid, attrs=b"", legacy=False, fingerprint=False):
    """txid: 16 bytes for RFC 3489, 12 for RFC 5389 (after the cookie)."""
    head = txid if legacy else struct.pack(">I", MAGIC) + txid
    if fingerprint:
        m = struct.pack(">HH", typ, len(attrs) + 8) + head + attrs
        crc = (zlib.crc32(m) ^ 0x5354554E) & 0xFFFFFFFF
        return m + attr(FINGERPRINT, struct.pack(">I", crc))
    return struct.pack(">HH", typ, len(attrs)) + head + attrs


def parse(data):
    """(type, 16-byte cookie+txid, [(type, value)]); checks every length."""
    assert len(data) >= 20, "short reply"
    typ, length = struct.unpack(">HH", data[:4])
    assert length + 20 == len(data) and length % 4 == 0, "reply length"
    attrs, off = [], 20
    while off < len(data):
        t, n = struct.unpack(">HH", data[off:off + 4])
        assert off + 4 + n <= len(data), "attribute overruns"
        attrs.append((t, data[off + 4:off + 4 + n]))
        off += 4 + ((n + 3) & ~3)
    assert off == len(data)
    return typ, data[4:20], attrs


def get(attrs, typ):
    for t, v in attrs:
        if t == typ:
            return v
    return None


def address(value, xor_with=None):
    family, port = value[1], struct.unpack(">H", value[2:4])[0]
    raw = value[4:]
    if xor_with is not None:
        port ^= MAGIC >> 16
        raw = bytes(a ^ b for a, b in zip(raw, xor_with))
    ip = socket.inet_ntop(socket.AF_INET if family == 1 else socket.AF_INET6, raw)
    return ip, port


def change(ip=False, port=False):
    return attr(CHANGE_REQUEST, struct.pack(">I", (4 if ip else 0) | (2 if port else 0)))


# ---------- a classic RFC 3489 client ----------

class ClassicClient:
    """RFC 3489 section 10.1.  restricted simulates a port-restricted cone NAT
    on loopback: replies from an address this socket never sent to are
    dropped, as such a NAT drops them, and the mapping is taken as not local."""

    def __init__(self, restricted=False):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind(("127.0.0.1", 0))
        self.local = self.s.getsockname()
        self.restricted = restricted
        self.sent_to = set()

    def request(self, server, attrs=b"", timeout=0.5):
        txid = os.urandom(16)
        if struct.unpack(">I", txid[:4])[0] == MAGIC:
            txid = b"\0" + txid[1:]
        self.sent_to.add(server)
        self.s.sendto(message(0x0001, txid, attrs, legacy=True), server)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.s.settimeout(max(0.01, end - time.monotonic()))
            try:
                data, src = self.s.recvfrom(2048)
            except socket.timeout:
                break
            if self.restricted and src not in self.sent_to:
                continue
            typ, tid, attrs_ = parse(data)
            if tid == txid and typ == 0x0101:
                return src, attrs_
        return None, None

    def nat_type(self, server):
        _, r1 = self.request(server)
        if r1 is None:
            return "udp blocked"
        mapped = address(get(r1, MAPPED))
        changed = address(get(r1, CHANGED))
        _, r2 = self.request(server, change(ip=True, port=True))
        if mapped == self.local and not self.restricted:
            return "open internet" if r2 else "symmetric udp firewall"
        if r2:
            return "full cone"
        _, r1b = self.request(changed)
        if r1b is None or address(get(r1b, MAPPED)) != mapped:
            return "symmetric"
        _, r3 = self.request(server, change(port=True))
        return "restricted cone" if r3 else "port restricted cone"

    def close(self):
        self.s.close()


class TestStun(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server()
        cls.addr = ("127.0.0.1", cls.srv.port)

    @classmethod
    def tearDownClass(cls):
        assert cls.srv.stop() == 0

    def setUp(self):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind(("127.0.0.1", 0))
        self.s.settimeout(3)

    def tearDown(self):
        self.s.close()

    def ask(self, data, to=None):
        self.s.sendto(data, to or self.addr)
        reply, src = self.s.recvfrom(2048)
        return src, parse(reply), reply

    def silent(self, timeout=0.3):
        self.s.settimeout(timeout)
        try:
            self.s.recvfrom(2048)
            return False
        except socket.timeout:
            return True
        finally:
            self.s.settimeout(3)

    def test_classic_client_open_internet(self):
        c = ClassicClient()
        try:
            self.assertEqual(c.nat_type(self.addr), "open internet")
            src, r = c.request(self.addr)
            self.assertEqual(src, self.addr)
            self.assertEqual(address(get(r, MAPPED)), c.local)
            self.assertEqual(address(get(r, SOURCE)), self.addr)
            self.assertEqual(address(get(r, CHANGED)), ("127.0.0.2", self.srv.alt))
            self.assertIsNone(get(r, XOR_MAPPED), "no 5389 attribute for a 3489 client")
            for t, v in r:
                self.assertEqual(len(v) % 4, 0, "3489 attribute %#x not a multiple of 4" % t)
            src, _ = c.request(self.addr, change(ip=True, port=True))
            self.assertEqual(src, ("127.0.0.2", self.srv.alt))
        finally:
            c.close()

    def test_classic_client_behind_port_restricted_filter(self):
        c = ClassicClient(restricted=True)
        try:
            # Tests II and III are answered from the other IP and port, which the
            # filter drops; test I at CHANGED-ADDRESS shows the same mapping.
            self.assertEqual(c.nat_type(self.addr), "port restricted cone")
        finally:
            c.close()

    def test_rfc5389_binding(self):
        txid = os.urandom(12)
        src, (typ, tid, attrs), raw = self.ask(message(0x0001, txid, fingerprint=True))
        self.assertEqual(typ, 0x0101)
        self.assertEqual(tid, struct.pack(">I", MAGIC) + txid)
        me = self.s.getsockname()
        self.assertEqual(address(get(attrs, XOR_MAPPED), tid), me)
        self.assertEqual(address(get(attrs, MAPPED)), me)
        self.assertEqual(address(get(attrs, RESPONSE_ORIGIN)), self.addr)
        self.assertEqual(address(get(attrs, OTHER_ADDRESS)), ("127.0.0.2", self.srv.alt))
        self.assertEqual(get(attrs, SOFTWARE), b"skywire-c stun")
        self.assertEqual(attrs[-1][0], FINGERPRINT)
        self.assertEqual(struct.unpack(">I", attrs[-1][1])[0],
                         (zlib.crc32(raw[:-8]) ^ 0x5354554E) & 0xFFFFFFFF)
        # Without a FINGERPRINT in the request, none in the reply.
        _, (_, _, attrs), _ = self.ask(message(0x0001, os.urandom(12)))
        self.assertIsNone(get(attrs, FINGERPRINT))

    def test_change_request_every_socket(self):
        ports = {False: self.srv.port, True: self.srv.alt}
        for ip in (False, True):
            for port in (False, True):
                src, (typ, _, attrs), _ = self.ask(
                    message(0x0001, os.urandom(12), change(ip, port)))
                want = ("127.0.0.2" if ip else "127.0.0.1", ports[port])
                self.assertEqual(typ, 0x0101)
                self.assertEqual(src, want)
                self.assertEqual(address(get(attrs, RESPONSE_ORIGIN)), want)
        # Asked at the alternate address: OTHER-ADDRESS is the primary.
        src, (_, _, attrs), _ = self.ask(message(0x0001, os.urandom(12)),
                                         ("127.0.0.2", self.srv.alt))
        self.assertEqual(src, ("127.0.0.2", self.srv.alt))
        self.assertEqual(address(get(attrs, OTHER_ADDRESS)), self.addr)

    def test_unknown_attribute_420(self):
        before = self.srv.metric('stun_responses_total{status="420"}')
        req = message(0x0001, os.urandom(12),
                      attr(0x7ABC, b"x") + attr(0x8ABC, b"optional") + attr(0x0026, b"\0" * 4))
        _, (typ, _, attrs), _ = self.ask(req)
        self.assertEqual(typ, 0x0111)
        err = get(attrs, ERROR_CODE)
        self.assertEqual((err[2] & 7) * 100 + err[3], 420)
        unknown = get(attrs, UNKNOWN)
        self.assertEqual(struct.unpack(">%dH" % (len(unknown) // 2), unknown), (0x7ABC, 0x0026))
        self.assertEqual(self.srv.metric('stun_responses_total{status="420"}'), before + 1)

    def test_garbage_dropped_and_counted(self):
        cases = [
            (b"", "short"),
            (b"GET / HTTP/1.0\r\nHost: stun\r\n\r\n", "not_stun"),
            (message(0x0001, os.urandom(12))[:19], "short"),
            (message(0x0001, os.urandom(12), attr(SOFTWARE, b"abcd"))[:-4], "bad_length"),
            (b"\x00\x01\x00\x04" + struct.pack(">I", MAGIC) + os.urandom(12) + b"\x80\x22\x00\x09",
             "bad_attribute"),
            (message(0x0001, os.urandom(12), attr(FINGERPRINT, b"\0\0\0\0")), "bad_fingerprint"),
            (b"\0" * 2000, "oversize"),
            (message(0x0101, os.urandom(12)), "unsupported"),
        ]
        for data, reason in cases:
            series = 'stun_dropped_total{reason="%s"}' % reason
            before = self.srv.metric(series) if reason else 0
            self.s.sendto(data, self.addr)
            self.assertTrue(self.silent(), "answered %r" % data[:24])
            if reason:
                self.assertEqual(self.srv.metric(series), before + 1, reason)
        # Still serving.
        _, (typ, _, _), _ = self.ask(message(0x0001, os.urandom(12)))
        self.assertEqual(typ, 0x0101)

    def test_indication_unanswered(self):
        before = self.srv.metric('stun_indications_total{service="stun-server"}')
        self.s.sendto(message(0x0011, os.urandom(12)), self.addr)
        self.assertTrue(self.silent())
        self.assertEqual(self.srv.metric('stun_indications_total{service="stun-server"}'),
                         before + 1)


class TestSingleAddress(unittest.TestCase):
    def test_change_request_without_alternates(self):
        srv = Server(alternates=False)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.settimeout(3)
            s.sendto(message(0x0001, os.urandom(12), change(ip=True)), ("127.0.0.1", srv.port))
            typ, _, attrs = parse(s.recvfrom(2048)[0])
            self.assertEqual(typ, 0x0111)
            self.assertEqual(get(attrs, UNKNOWN), struct.pack(">H", CHANGE_REQUEST))
            s.sendto(message(0x0001, os.urandom(12), change()), ("127.0.0.1", srv.port))
            typ, _, attrs = parse(s.recvfrom(2048)[0])
            self.assertEqual(typ, 0x0101)
            self.assertIsNone(get(attrs, OTHER_ADDRESS))
            self.assertIsNotNone(get(attrs, RESPONSE_ORIGIN))
        finally:
            s.close()
            self.assertEqual(srv.stop(), 0)

    def test_ipv6(self):
        try:
            with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as t:
                t.bind(("::1", 0))
        except OSError:
            self.skipTest("no IPv6 loopback")
        port = None
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as t:
            t.bind(("::1", 0))
            port = t.getsockname()[1]
        http = free_tcp_port()
        log = open("%s/stun-server-v6-%d.log" % (TMP, http), "ab")
        proc = subprocess.Popen([os.path.join(BUILD, "bin", "stun-server"), "--listen",
                                 "[::1]:%d" % port, "--health-listen", "127.0.0.1:%d" % http],
                                stdout=log, stderr=log)
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        try:
            s.bind(("::1", 0))
            s.settimeout(0.2)
            me = s.getsockname()[:2]
            deadline = time.monotonic() + 10
            while True:
                self.assertLess(time.monotonic(), deadline, "no answer over IPv6")
                s.sendto(message(0x0001, os.urandom(12)), ("::1", port))
                try:
                    data = s.recvfrom(2048)[0]
                    break
                except socket.timeout:
                    continue
            typ, tid, attrs = parse(data)
            self.assertEqual(typ, 0x0101)
            self.assertEqual(address(get(attrs, XOR_MAPPED), tid), me)
            self.assertEqual(address(get(attrs, RESPONSE_ORIGIN)), ("::1", port))
        finally:
            s.close()
            proc.terminate()
            self.assertEqual(proc.wait(15), 0)
            log.close()

    def test_bad_configurations_refused(self):
        binary = os.path.join(BUILD, "bin", "stun-server")
        ok = subprocess.run([binary, "-n", "--listen", "127.0.0.1:3478", "--secondary-ip",
                             "127.0.0.2", "--alt-port", "3479"], capture_output=True, timeout=10)
        self.assertEqual(ok.returncode, 0, ok.stderr)
        self.assertIn(b"configuration OK", ok.stdout + ok.stderr)
        for args in (["--secondary-ip", "127.0.0.2"],
                     ["--alt-port", "3479"],
                     ["--listen", "0.0.0.0:3478", "--secondary-ip", "127.0.0.2",
                      "--alt-port", "3479"],
                     ["--secondary-ip", "::2", "--alt-port", "3479"],
                     ["--listen", "localhost:3478"],
                     ["--software", "x" * 200]):
            r = subprocess.run([binary, "-n"] + args, capture_output=True, timeout=10)
            self.assertNotEqual(r.returncode, 0, args)


if __name__ == "__main__":
    unittest.main(verbosity=2)

"""A small independent Skywire client for black-box tests, written from the
spec alone (crypto.md, services.md) on PyNaCl: keys, canonical JSON, signed
dmsg entries, httpauth requests.  Runs on Debian's /usr/bin/python3."""

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request

import nacl.signing
import nacl.encoding


def canon(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class Key:
    def __init__(self, seed=None):
        self.sk = nacl.signing.SigningKey(seed or os.urandom(32))
        self.pk = self.sk.verify_key.encode().hex()
        self.seed = bytes(self.sk).hex()

    def sign(self, msg):
        return self.sk.sign(msg).signature.hex()


def signed(obj, key):
    obj = dict(obj)
    obj.pop("signature", None)
    obj["signature"] = key.sign(canon(obj))
    return obj


def client_entry(key, seq, servers, ts=None):
    return signed({"version": "0.0.1", "sequence": seq,
                   "timestamp": int(ts if ts is not None else time.time()),
                   "static": key.pk, "client": {"delegated_servers": servers}}, key)


def server_entry(key, seq, addr, sessions=10, ts=None):
    return signed({"version": "0.0.1", "sequence": seq,
                   "timestamp": int(ts if ts is not None else time.time()),
                   "static": key.pk, "server": {"address": addr, "availableSessions": sessions}},
                  key)


class Resp:
    def __init__(self, status, body, headers):
        self.status = status
        self.body = body
        self.headers = headers

    def json(self):
        return json.loads(self.body)


def request(method, url, body=None, headers=None, timeout=10):
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return Resp(r.status, r.read(), dict(r.headers))
    except urllib.error.HTTPError as e:
        return Resp(e.code, e.read(), dict(e.headers))


def auth_request(base, method, path, key, body=b"", nonce=None, tamper=None):
    """httpauth: sign METHOD " " PATH "\\n" NONCE "\\n" BODY."""
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
    if nonce is None:
        nonce = request("GET", base + "/security/nonces/" + key.pk).json()["next_nonce"]
    msg = method.encode() + b" " + path.encode() + b"\n" + str(nonce).encode() + b"\n" + body
    hdrs = {"SW-Public": key.pk, "SW-Nonce": str(nonce), "SW-Sig": key.sign(msg)}
    if tamper:
        tamper(hdrs)
    return request(method, base + path, body or None, hdrs)


def metric(base, name, label=""):
    """The value of the first sample of metric name in base's /metrics whose
    labels contain label; 0.0 when there is none."""
    for line in request("GET", base + "/metrics").body.decode().splitlines():
        if line.startswith(name + "{") and label in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


_given_ports = set()


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port():
    """A port on 127.0.0.1 free for TCP and UDP, below the kernel's ephemeral range.

    A port the kernel handed out for bind(0) is from the ephemeral range, so a
    daemon's own outgoing connect() may take it as its local port before the
    daemon that was given it listens there (seen: a one-process deployment on
    generated ports failing to start once its dmsg clients retried every
    100 ms). Below that range, only a listener can hold it.
    """
    import random
    hi = min(_ephemeral_low(), 65536) - 1
    for _ in range(500):
        p = random.randint(10000, hi)
        if p in _given_ports:
            continue
        try:
            with socket.socket() as t, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                t.bind(("127.0.0.1", p))
                u.bind(("127.0.0.1", p))
        except OSError:
            continue
        _given_ports.add(p)
        return p
    raise RuntimeError("no free port below the ephemeral range")


def wait_until(pred, timeout=10.0, step=0.02):
    """Poll a condition until it holds or the deadline passes; True if it held."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


def http_up(url):
    try:
        urllib.request.urlopen(url, timeout=1)
        return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


class Redis:
    """A private redis-server on a free port, for tests."""

    def __init__(self):
        self.port = free_port()
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ok = wait_until(lambda: _connects(self.port), 10)
        assert ok, "redis-server did not start"

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    @property
    def url(self):
        return "redis://127.0.0.1:%d/0" % self.port

    def cmd(self, *args):
        """One command on a fresh connection; the reply's first line, decoded
        ("+OK" -> "OK", ":3" -> "3", "$5" -> the bulk string, "$-1" -> None)."""
        req = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            req += b"$%d\r\n%s\r\n" % (len(a), a)
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(req)
            f = s.makefile("rb")
            line = f.readline().rstrip(b"\r\n").decode()
            if line[0] == "-":
                raise RuntimeError("redis: " + line[1:])
            if line[0] == "$":
                n = int(line[1:])
                return None if n < 0 else f.read(n + 2)[:n].decode()
            return line[1:]


class OnRedis:
    """Mixin for a test class whose base setUpClass starts its daemon with
    cls.extra: the class gets a private redis, passed as --redis, stopped
    after the daemon.  Put it first: class TestRedis(OnRedis, Base, TestCase)."""

    @classmethod
    def setUpClass(cls):
        cls.redis = Redis()
        cls.extra = ["--redis", cls.redis.url]
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.redis.stop()


def _connects(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Daemon:
    """A daemon from build/bin started with flags; stopped with SIGTERM."""

    def __init__(self, name, *args, health_path="/health"):
        self.name = name
        self.port = free_port()
        self.args = list(args)
        self.base = "http://127.0.0.1:%d" % self.port
        self.proc = None
        self.log = None
        self.start()

    def start(self):
        bindir = os.path.join(os.environ.get("SW_BUILD", "build"), "bin")
        self.log = open("%s/%s-%d.log" % (os.environ.get("SW_TMP", "/tmp"), self.name,
                                          self.port), "ab")
        self.proc = subprocess.Popen([os.path.join(bindir, self.name), "--listen",
                                      "127.0.0.1:%d" % self.port] + self.args,
                                     stdout=self.log, stderr=self.log)
        ok = wait_until(lambda: self.proc.poll() is not None or http_up(self.base + "/health"),
                        10)
        assert ok and self.proc.poll() is None, "%s did not start" % self.name

    def stop(self):
        if self.proc:
            self.proc.terminate()
            rc = self.proc.wait(15)
            self.proc = None
            self.log.close()
            return rc
        return None


class DmsgServer:
    """A dmsg-server from build/bin registered at the dmsg-discovery dd_base
    (started once discovery lists it); stopped with SIGTERM."""

    def __init__(self, dd_base, log_name="dmsg-server.log"):
        bindir = os.path.join(os.environ.get("SW_BUILD", "build"), "bin")
        port, hport = free_port(), free_port()
        self.log = open(os.path.join(os.environ.get("SW_TMP", "/tmp"), log_name), "ab")
        self.proc = subprocess.Popen([os.path.join(bindir, "dmsg-server"), "--listen",
                                      "127.0.0.1:%d" % port, "--health-listen",
                                      "127.0.0.1:%d" % hport, "--discovery", dd_base],
                                     stderr=self.log)
        assert wait_until(lambda: request("GET", dd_base + "/dmsg-discovery/available_servers")
                          .json() != [], 10), "dmsg-server did not register"

    def stop(self):
        self.proc.terminate()
        rc = self.proc.wait(15)
        self.log.close()
        return rc

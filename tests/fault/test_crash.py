"""Crash and store faults under a write load (issue #11): each stateful
service on a redis with AOF (appendfsync always) takes writes from several
clients; it is killed with SIGKILL mid-load and restarted, redis itself is
killed and restarted, and redis is stopped (SIGSTOP) and resumed.  The
properties: no acknowledged write is lost; while redis is stopped the
service says 503 (health and requests) within about a second instead of
hanging; it serves again once redis is back."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "py"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "transport-discovery"))
from reliab import record  # noqa: E402
from swclient import (Daemon, Key, _connects, auth_request, client_entry, free_port,  # noqa: E402
                      request, wait_until)
from tpclient import entry as tp_entry  # noqa: E402

WRITERS = 4
LOAD_S = 1.5


class AofRedis:
    """redis-server with AOF fsync on every write, in a private directory."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="sw-aof-")
        self.port = free_port()
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
             "--save", "", "--appendonly", "yes", "--appendfsync", "always"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_until(lambda: _connects(self.port), 10), "redis did not start"

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def url(self):
        return "redis://127.0.0.1:%d/0" % self.port


# Per service: how to write one record (returns (status, key)) and how to
# check that an acknowledged one is there.

def dd_write(base, i):
    k = Key()
    r = request("POST", base + "/dmsg-discovery/entry/", client_entry(k, 0, []), timeout=5)
    return r.status, k.pk


def dd_check(base, pk):
    return request("GET", base + "/dmsg-discovery/entry/" + pk, timeout=5).status == 200


def td_write(base, i):
    a, b = Key(), Key()
    e = tp_entry(a, b)
    r = auth_request(base, "POST", "/transports/", a, [e])
    return r.status, e["t_id"]


def td_check(base, tid):
    return request("GET", base + "/transports/id:" + tid, timeout=5).status == 200


def sd_write(base, i):
    k = Key()
    body = {"address": "%s:44" % k.pk, "type": "vpn", "version": "1.0.0",
            "geo": {"country": "DE"}, "local_ips": [], "display_node_ip": False}
    r = auth_request(base, "POST", "/api/services", k, body)
    return r.status, "%s:44" % k.pk


def sd_check(base, addr):
    return request("GET", base + "/api/services/" + addr + "?type=vpn", timeout=5).status == 200


def ar_write(base, i):
    k = Key()
    r = auth_request(base, "POST", "/bind/stcpr", k, {"port": 1024 + i % 60000,
                                                       "local_addresses": []})
    return r.status, k


def ar_check(base, k):
    # A binding is read back by anyone with httpauth; a fresh asker each time.
    return auth_request(base, "GET", "/resolve/stcpr/" + k.pk, Key()).status == 200


SERVICES = [
    ("dmsg-discovery", dd_write, dd_check, []),
    ("address-resolver", ar_write, ar_check, ["--entry-timeout-s", "600"]),
    ("transport-discovery", td_write, td_check, ["--entry-timeout-s", "600"]),
    ("service-discovery", sd_write, sd_check, []),
]


class Load:
    """WRITERS threads writing until stopped; acked keeps what got 2xx."""

    def __init__(self, base, write):
        self.base, self.write = base, write
        self.acked, self.failed, self.lock = [], 0, threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(n,)) for n in range(WRITERS)]
        for t in self.threads:
            t.start()

    def run(self, n):
        i = 0
        while not self.stop.is_set():
            try:
                status, key = self.write(self.base, i)
            except OSError:
                status, key = 0, None
            with self.lock:
                if 200 <= status < 300:
                    self.acked.append(key)
                else:
                    self.failed += 1
            i += 1

    def end(self):
        self.stop.set()
        for t in self.threads:
            t.join(30)


class TestCrash(unittest.TestCase):

    def setUp(self):
        self.redis = AofRedis()

    def tearDown(self):
        self.redis.stop()

    def check_all(self, base, check, keys):
        return [k for k in keys if not check(base, k)]

    def test_kill9_each_service_under_load(self):
        summary = []
        for name, write, check, extra in SERVICES:
            d = Daemon(name, "--redis", self.redis.url, *extra)
            load = Load(d.base, write)
            time.sleep(LOAD_S)  # the load runs; nothing here waits on it
            d.proc.send_signal(signal.SIGKILL)
            d.proc.wait(10)
            load.end()
            acked = list(load.acked)
            d.log.close()
            d.proc = None
            d.start()
            lost = self.check_all(d.base, check, acked)
            self.assertEqual(d.stop(), 0)
            summary.append("%s %d acked, %d lost" % (name, len(acked), len(lost)))
            self.assertEqual(lost, [], "%s lost acknowledged writes" % name)
            self.assertGreater(len(acked), 0)
        record("kill9_services", "kill -9 of each stateful service under %d writers "
               "(redis AOF, fsync always), restart" % WRITERS, "%.1f s of load each" % LOAD_S,
               "; ".join(summary), True)

    def test_redis_killed_and_restarted(self):
        d = Daemon("dmsg-discovery", "--redis", self.redis.url)
        try:
            load = Load(d.base, dd_write)
            time.sleep(LOAD_S)
            self.redis.kill()
            # Down within about a second, and answers 503 at once meanwhile.
            self.assertTrue(wait_until(lambda: request("GET", d.base + "/health").status == 503,
                                       3))
            self.redis.start()
            self.assertTrue(wait_until(lambda: request("GET", d.base + "/health").status == 200,
                                       15))
            time.sleep(0.5)
            load.end()
            acked = list(load.acked)
            lost = self.check_all(d.base, dd_check, acked)
            record("redis_kill9", "kill -9 of redis (AOF) under %d writers, restart" % WRITERS,
                   "%d writes acknowledged, %d refused while down" % (len(acked), load.failed),
                   "%d acknowledged writes lost; health 503 while down, 200 after" % len(lost),
                   not lost)
            self.assertEqual(lost, [])
        finally:
            self.assertEqual(d.stop(), 0)

    def test_redis_stalled(self):
        d = Daemon("dmsg-discovery", "--redis", self.redis.url)
        try:
            load = Load(d.base, dd_write)
            time.sleep(0.5)
            self.redis.proc.send_signal(signal.SIGSTOP)
            t0 = time.monotonic()
            self.assertTrue(wait_until(lambda: request("GET", d.base + "/health").status == 503,
                                       5))
            noticed = time.monotonic() - t0
            # A request now is refused at once, not held for the stalled redis.
            t1 = time.monotonic()
            r = request("POST", d.base + "/dmsg-discovery/entry/", client_entry(Key(), 0, []))
            refused_ms = (time.monotonic() - t1) * 1000
            self.assertEqual(r.status, 503)
            self.assertLess(refused_ms, 500)
            time.sleep(1.0)  # stays stopped a while longer
            self.redis.proc.send_signal(signal.SIGCONT)
            self.assertTrue(wait_until(lambda: request("GET", d.base + "/health").status == 200,
                                       15))
            load.end()
            acked = list(load.acked)
            lost = self.check_all(d.base, dd_check, acked)
            record("redis_stall", "SIGSTOP of redis under %d writers, SIGCONT after ~2 s"
                   % WRITERS, "%d writes acknowledged, %d refused" % (len(acked), load.failed),
                   "health 503 after %.2f s, a write refused in %.0f ms, %d acknowledged "
                   "lost, health 200 after resume" % (noticed, refused_ms, len(lost)),
                   not lost and noticed < 2.5)
            self.assertLess(noticed, 2.5)  # PING every 0.5 s, 1 s to answer, a loaded host
            self.assertEqual(lost, [])
        finally:
            self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main()

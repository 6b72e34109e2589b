"""dmsg-discovery when its redis cannot serve: every answer is 503 (never a
500), and the log says why in a bounded number of warn lines, however many
requests fail (services.md: 503 while the store is unavailable)."""

import os
import re
import socket
import sys
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "py"))
from swclient import (Daemon, Key, Redis, auth_request, client_entry, free_port,  # noqa: E402
                      request, wait_until)

E = "/dmsg-discovery/entry/"
BURST = 10  # SW_LOG_LIMIT_BURST (common/log.h)


class LoadingRedis:
    """A TCP server speaking just enough RESP to answer every command the
    way a redis still loading its AOF after a restart does."""

    def __init__(self):
        self.port = free_port()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(16)
        self.commands = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        f = c.makefile("rb")
        try:
            while True:
                line = f.readline()
                if not line:
                    return
                if not line.startswith(b"*"):
                    continue
                for _ in range(int(line[1:])):
                    n = int(f.readline()[1:])
                    f.read(n + 2)
                self.commands += 1
                c.sendall(b"-LOADING Redis is loading the dataset in memory\r\n")
        except (OSError, ValueError):
            return
        finally:
            c.close()

    def stop(self):
        self.sock.close()


def warn_lines(daemon):
    daemon.log.flush()
    with open(daemon.log.name, "rb") as f:
        text = f.read().decode(errors="replace")
    return [ln for ln in text.splitlines() if " WARN " in ln and "request failed" in ln]


class TestLoading(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = LoadingRedis()
        cls.dd = Daemon("dmsg-discovery", "--redis", "redis://127.0.0.1:%d/0" % cls.redis.port)
        cls.base = cls.dd.base

    @classmethod
    def tearDownClass(cls):
        cls.dd.stop()
        cls.redis.stop()

    def test_every_store_failure_is_503(self):
        k = Key()
        statuses = set()
        for _ in range(30):
            statuses.add(request("GET", self.base + E + k.pk).status)
            statuses.add(request("POST", self.base + E, client_entry(k, 1, [])).status)
            statuses.add(request("GET", self.base + "/dmsg-discovery/all_servers").status)
            statuses.add(auth_request(self.base, "DELETE", E + k.pk, k, nonce=0).status)
        self.assertEqual(statuses, {503})
        lines = warn_lines(self.dd)
        self.assertGreater(len(lines), 0)
        # 120 failed requests, at most one burst of lines (plus a next window's).
        self.assertLessEqual(len(lines), 2 * BURST)
        for ln in lines:
            self.assertRegex(ln, r"route=/dmsg-discovery/\S+ status=503 cause=\S")
        self.assertTrue(any("LOADING" in ln for ln in lines), lines)


class TestOutage(unittest.TestCase):
    """A real redis stopped under requests: 503s, and few lines naming it."""

    def test_outage_bounded_warns(self):
        redis = Redis()
        dd = Daemon("dmsg-discovery", "--redis", redis.url)
        try:
            k = Key()
            self.assertEqual(request("POST", dd.base + E, client_entry(k, 0, [])).status, 200)
            before = len(warn_lines(dd))
            redis.stop()
            self.assertTrue(wait_until(lambda: request("GET", dd.base + E + k.pk).status == 503,
                                       10))
            statuses = {request("GET", dd.base + E + k.pk).status for _ in range(200)}
            self.assertEqual(statuses, {503})
            lines = warn_lines(dd)[before:]
            self.assertGreater(len(lines), 0)
            self.assertLessEqual(len(lines), 2 * BURST)
            for ln in lines:
                self.assertTrue(re.search(r"status=503 cause=\S", ln), ln)
        finally:
            dd.stop()
            redis.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)

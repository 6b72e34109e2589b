"""dmsg-cat end to end: dmsg-discovery and a dmsg-server from build/bin on
free ports, then two dmsg-cat processes talking through the server; the
bytes each side prints must be exactly the bytes the other side read.

Waits are on conditions (a line on stderr, a process exit, a health URL),
each with a deadline."""

import os
import queue
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "py"))
from swclient import Daemon, Key, free_port, http_up, request, wait_until  # noqa: E402

BIN = os.path.join(os.environ.get("SW_BUILD", "build"), "bin")
TMP = os.environ.get("SW_TMP", "/tmp")


class Cat:
    """A dmsg-cat process whose stderr lines are collected by a thread."""

    def __init__(self, args, stdin, stdout):
        self.proc = subprocess.Popen([os.path.join(BIN, "dmsg-cat")] + args, stdin=stdin,
                                     stdout=stdout, stderr=subprocess.PIPE)
        self.lines = queue.Queue()
        self.err = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip("\n")
            self.err.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def wait_line(self, prefix, timeout=20):
        """The first stderr line starting with prefix (None on exit or timeout)."""
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                return None
            if line is None:
                return None
            if line.startswith(prefix):
                return line

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.reader.join(10)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if f is not None:
                f.close()


class DmsgCatTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.disc = Daemon("dmsg-discovery")
        srv = Key()
        cls.port, cls.health = free_port(), free_port()
        cls.log = open(os.path.join(TMP, "dmsg-server-cat-%d.log" % cls.port), "ab")
        cls.srv = subprocess.Popen(
            [os.path.join(BIN, "dmsg-server"), "--listen", "127.0.0.1:%d" % cls.port,
             "--health-listen", "127.0.0.1:%d" % cls.health, "--discovery", cls.disc.base,
             "--secret-key", srv.seed, "--public-key", srv.pk],
            stdout=cls.log, stderr=cls.log)
        up = wait_until(lambda: cls.srv.poll() is not None or
                        http_up("http://127.0.0.1:%d/health" % cls.health), 10)
        assert up and cls.srv.poll() is None, "dmsg-server did not start"
        # registered in discovery, so clients find it on their first try
        assert wait_until(lambda: any(
            e.get("static") == srv.pk for e in
            (request("GET", cls.disc.base + "/dmsg-discovery/available_servers").json() or [])),
            10), "dmsg-server did not register"

    @classmethod
    def tearDownClass(cls):
        cls.srv.terminate()
        cls.srv.wait(15)
        cls.log.close()
        cls.disc.stop()

    def listen(self, port, stdin, stdout):
        cat = Cat(["-d", self.disc.base, "-l", str(port)], stdin, stdout)
        self.addCleanup(cat.kill)
        pk = cat.wait_line("dmsg-cat: pk ")
        self.assertIsNotNone(pk, "\n".join(cat.err))
        self.assertIsNotNone(cat.wait_line("dmsg-cat: listening on port %d" % port),
                             "\n".join(cat.err))
        return cat, pk.split()[-1]

    def test_bytes_both_ways(self):
        to_listener = os.urandom(8 * 1024 * 1024 + 3)
        to_dialer = os.urandom(1024 * 1024 + 5)
        with tempfile.TemporaryFile() as src, tempfile.TemporaryFile() as l_out, \
                tempfile.TemporaryFile() as d_out:
            src.write(to_listener)
            src.seek(0)
            # the listener reads a pipe (polled), the dialer a regular file (read directly)
            lst, pk = self.listen(7, subprocess.PIPE, l_out)
            dialer = Cat(["-d", self.disc.base, pk, "7"], src, d_out)
            self.addCleanup(dialer.kill)

            def feed():
                lst.proc.stdin.write(to_dialer)
                lst.proc.stdin.close()
            threading.Thread(target=feed, daemon=True).start()
            self.assertEqual(dialer.proc.wait(60), 0, "\n".join(dialer.err))
            self.assertEqual(lst.proc.wait(60), 0, "\n".join(lst.err))
            l_out.seek(0)
            d_out.seek(0)
            got_l, got_d = l_out.read(), d_out.read()
        self.assertEqual(len(got_l), len(to_listener))
        self.assertTrue(got_l == to_listener, "listener output differs")
        self.assertEqual(len(got_d), len(to_dialer))
        self.assertTrue(got_d == to_dialer, "dialer output differs")

    def test_pipes_and_half_close(self):
        """stdin EOF half-closes; the answer still comes back over pipes."""
        lst, pk = self.listen(8, subprocess.PIPE, subprocess.PIPE)
        dialer = Cat(["-d", self.disc.base, pk, "8"], subprocess.PIPE, subprocess.PIPE)
        self.addCleanup(dialer.kill)
        dialer.proc.stdin.write(b"question\n")
        dialer.proc.stdin.close()
        # the listener sees everything and the EOF before it answers
        self.assertEqual(lst.proc.stdout.read(9), b"question\n")
        lst.proc.stdin.write(b"answer\n")
        lst.proc.stdin.close()
        self.assertEqual(dialer.proc.stdout.read(), b"answer\n")
        self.assertEqual(dialer.proc.wait(30), 0, "\n".join(dialer.err))
        self.assertEqual(lst.proc.wait(30), 0, "\n".join(lst.err))
        self.assertEqual(lst.proc.stdout.read(), b"")

    def test_no_listener(self):
        lst, pk = self.listen(9, subprocess.PIPE, subprocess.DEVNULL)
        dialer = Cat(["-d", self.disc.base, pk, "10"], subprocess.DEVNULL, subprocess.PIPE)
        self.addCleanup(dialer.kill)
        self.assertEqual(dialer.proc.wait(30), 1)
        dialer.reader.join(10)
        self.assertTrue(any("REJECT 2" in line for line in dialer.err), "\n".join(dialer.err))
        lst.kill()

    def test_usage(self):
        r = subprocess.run([os.path.join(BIN, "dmsg-cat"), "--version"], capture_output=True)
        self.assertEqual(r.returncode, 0)
        self.assertTrue(r.stdout.startswith(b"dmsg-cat "))
        r = subprocess.run([os.path.join(BIN, "dmsg-cat"), "--help"], capture_output=True)
        self.assertEqual(r.returncode, 0)
        self.assertIn(b"-l PORT", r.stdout)
        r = subprocess.run([os.path.join(BIN, "dmsg-cat"), "nothex", "1"], capture_output=True)
        self.assertEqual(r.returncode, 2)


if __name__ == "__main__":
    unittest.main()

"""The first visor, black-box: gen-config, run with a config file, keep a dmsg
session and a discovery entry, answer /api/pk and /api/summary, and the
skywire-cli commands on top; bad configs refused at start."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "py"))
from swclient import Daemon, free_port, http_up, request, wait_until  # noqa: E402

BIN = os.path.join(os.environ.get("SW_BUILD", "build"), "bin")


def gen_config():
    r = subprocess.run([os.path.join(BIN, "visor"), "gen-config"], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def write(obj):
    f = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump(obj, f)
    f.close()
    return f.name


class Visor:
    def __init__(self, discovery):
        self.cfg = gen_config()
        self.cfg["dmsg"]["discovery"] = discovery
        self.api_port = free_port()
        self.cfg["api_listen"] = "127.0.0.1:%d" % self.api_port
        self.api = "http://127.0.0.1:%d" % self.api_port
        self.path = write(self.cfg)
        self.proc = subprocess.Popen([os.path.join(BIN, "visor"), "run", "-c", self.path],
                                     stderr=subprocess.PIPE, text=True)
        assert wait_until(lambda: self.proc.poll() is not None or http_up(self.api + "/api/pk"),
                          10)
        assert self.proc.poll() is None, self.proc.stderr.read()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=15)
        return self.proc.returncode, err

    def cli(self, *args):
        return subprocess.run([os.path.join(BIN, "skywire-cli"), "--api", self.api] +
                              list(args), capture_output=True, text=True, timeout=15)


class TestVisor(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dd = Daemon("dmsg-discovery")
        port, hport = free_port(), free_port()
        cls.srv = subprocess.Popen([os.path.join(BIN, "dmsg-server"), "--listen",
                                    "127.0.0.1:%d" % port, "--health-listen",
                                    "127.0.0.1:%d" % hport, "--discovery", cls.dd.base],
                                   stderr=subprocess.DEVNULL)
        cls.srv_health = "http://127.0.0.1:%d" % hport
        assert wait_until(lambda: http_up(cls.srv_health + "/health"), 10)
        assert wait_until(lambda: request("GET", cls.dd.base +
                                          "/dmsg-discovery/available_servers").json() != [], 10)
        cls.server_pk = request("GET", cls.dd.base +
                                "/dmsg-discovery/available_servers").json()[0]["static"]

    @classmethod
    def tearDownClass(cls):
        cls.srv.send_signal(signal.SIGTERM)
        cls.srv.wait(15)
        cls.dd.stop()

    def test_two_visors_hold_sessions_and_entries(self):
        a, b = Visor(self.dd.base), Visor(self.dd.base)
        try:
            for v in (a, b):
                self.assertTrue(wait_until(lambda: request("GET", v.api + "/api/summary").json()
                                           ["dmsg_servers"] == [self.server_pk], 15))
                pk = request("GET", v.api + "/api/pk").json()["pk"]
                self.assertEqual(pk, v.cfg["public_key"])
                self.assertTrue(wait_until(lambda: request(
                    "GET", self.dd.base + "/dmsg-discovery/entry/" + pk).status == 200, 10))
                e = request("GET", self.dd.base + "/dmsg-discovery/entry/" + pk).json()
                self.assertEqual(e["client"]["delegated_servers"], [self.server_pk])
                r = v.cli("visor", "pk")
                self.assertEqual((r.returncode, r.stdout.strip()), (0, pk))
                r = v.cli("visor", "info")
                self.assertEqual(r.returncode, 0)
                self.assertIn(self.server_pk, r.stdout)
                r = v.cli("--json", "visor", "info")
                self.assertEqual(json.loads(r.stdout)["pk"], pk)
                h = request("GET", v.api + "/health").json()
                self.assertEqual(h["checks"]["dmsg"], "ok")
            sessions = {s["pk"] for s in request("GET", self.srv_health + "/sessions").json()}
            self.assertTrue({a.cfg["public_key"], b.cfg["public_key"]} <= sessions)
        finally:
            for v in (a, b):
                rc, err = v.stop()
                self.assertEqual(rc, 0, err)

    def test_cli_without_visor(self):
        r = subprocess.run([os.path.join(BIN, "skywire-cli"), "--api",
                            "http://127.0.0.1:%d" % free_port(), "visor", "pk"],
                           capture_output=True, text=True, timeout=15)
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot reach", r.stderr)

    def test_bad_configs_refused(self):
        c = gen_config()
        c["public_key"] = gen_config()["public_key"]
        for bad, needle in ((c, "public_key"),
                            ({**gen_config(), "api_listen": "0.0.0.0:8000"}, "loopback"),
                            ({**gen_config(), "bogus": 1}, "bogus")):
            r = subprocess.run([os.path.join(BIN, "visor"), "run", "-c", write(bad)],
                               capture_output=True, text=True, timeout=10)
            self.assertEqual(r.returncode, 1)
            self.assertIn(needle, r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)

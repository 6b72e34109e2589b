"""The command lines as an operator uses them: skywire-svc list / check /
gen-config / run --only, and a daemon's --help, --version, -n, config file <
env < flag precedence, unknown keys and flags, SIGTERM."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "py"))
from swclient import free_port, http_up, request, wait_until  # noqa: E402

BIN = os.path.join(os.environ.get("SW_BUILD", "build"), "bin")


def run(*args, env=None, timeout=20):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([os.path.join(BIN, args[0])] + list(args[1:]), capture_output=True,
                          text=True, env=e, timeout=timeout)


def write(obj):
    f = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump(obj, f)
    f.close()
    return f.name


class TestSvc(unittest.TestCase):
    def test_list_and_version(self):
        r = run("skywire-svc", "list")
        self.assertEqual(r.returncode, 0)
        self.assertIn("dmsg-discovery", r.stdout)
        r = run("skywire-svc", "--version")
        self.assertRegex(r.stdout, r"^skywire-svc \d+\.\d+\.\d+")

    def test_check_names_unknown_key_and_file(self):
        p = write({"services": [{"type": "dmsg-discovery", "listen": "127.0.0.1:1",
                                 "lisen": "x"}]})
        r = run("skywire-svc", "check", "--config", p)
        self.assertEqual(r.returncode, 1)
        self.assertIn('unknown key "lisen"', r.stderr)
        self.assertIn(p, r.stderr)
        p = write({"services": [{"type": "nope"}]})
        r = run("skywire-svc", "check", "--config", p)
        self.assertEqual(r.returncode, 1)
        self.assertIn('unknown service type "nope"', r.stderr)
        p = write({"bogus": 1, "services": []})
        self.assertEqual(run("skywire-svc", "check", "--config", p).returncode, 1)

    def test_gen_config_checks_and_runs_only(self):
        r = run("skywire-svc", "gen-config")
        self.assertEqual(r.returncode, 0, r.stderr)
        d = json.loads(r.stdout)
        port, hport = free_port(), free_port()
        for inst in d["services"]:
            inst["listen"] = "127.0.0.1:%d" % port if inst["type"] == "dmsg-discovery" \
                else inst.get("listen")
        d["services"] = [i for i in d["services"] if i["type"] == "dmsg-discovery"]
        d["health_addr"] = "127.0.0.1:%d" % hport
        p = write(d)
        r = run("skywire-svc", "check", "--config", p)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("configuration OK", r.stdout)
        self.assertIn("1. dmsg-discovery", r.stdout)
        proc = subprocess.Popen([os.path.join(BIN, "skywire-svc"), "run", "--config", p,
                                 "--only", "dmsg-discovery"], stderr=subprocess.PIPE, text=True)
        try:
            self.assertTrue(wait_until(
                lambda: http_up("http://127.0.0.1:%d/health" % hport), 10))
            h = request("GET", "http://127.0.0.1:%d/health" % hport)
            self.assertEqual(h.status, 200)
            self.assertEqual([s["service"] for s in h.json()["services"]], ["dmsg-discovery"])
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=15)
        self.assertEqual(proc.returncode, 0, err)
        self.assertIn("stopped", err)
        r = run("skywire-svc", "run", "--config", p, "--only", "nothing")
        self.assertEqual(r.returncode, 1)


class TestDaemon(unittest.TestCase):
    def test_help_version(self):
        r = run("dmsg-discovery", "--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("--entry-timeout-s", r.stdout)
        self.assertIn("SKYWIRE_ENTRY_TIMEOUT_S", r.stdout)
        r = run("dmsg-discovery", "--version")
        self.assertRegex(r.stdout, r"^dmsg-discovery \d+\.\d+\.\d+")

    def test_bad_flags_and_keys(self):
        r = run("dmsg-discovery", "--bogus", "1")
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown flag --bogus", r.stderr)
        r = run("dmsg-discovery", "--entry-timeout-s", "soon")
        self.assertEqual(r.returncode, 1)
        r = run("dmsg-discovery", "--secret-key", "00" * 31)
        self.assertEqual(r.returncode, 1)
        self.assertIn("secret_key", r.stderr)

    def test_check_and_precedence(self):
        fport, eport, gport = free_port(), free_port(), free_port()
        p = write({"listen": "127.0.0.1:%d" % fport, "entry_timeout_s": 10})
        r = run("dmsg-discovery", "-c", p, "-n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("configuration OK", r.stdout)
        # env beats the file, a flag beats env: the daemon listens on the flag's port.
        env = {"SKYWIRE_LISTEN": "127.0.0.1:%d" % eport}
        e = dict(os.environ)
        e.update(env)
        proc = subprocess.Popen([os.path.join(BIN, "dmsg-discovery"), "-c", p, "--listen",
                                 "127.0.0.1:%d" % gport], env=e, stderr=subprocess.PIPE,
                                text=True)
        try:
            self.assertTrue(wait_until(
                lambda: http_up("http://127.0.0.1:%d/health" % gport), 10))
            self.assertFalse(http_up("http://127.0.0.1:%d/health" % eport))
            self.assertFalse(http_up("http://127.0.0.1:%d/health" % fport))
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=15)
        self.assertEqual(proc.returncode, 0)
        # env alone beats the file.
        proc = subprocess.Popen([os.path.join(BIN, "dmsg-discovery"), "-c", p], env=e,
                                stderr=subprocess.PIPE, text=True)
        try:
            self.assertTrue(wait_until(
                lambda: http_up("http://127.0.0.1:%d/health" % eport), 10))
        finally:
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=15)
        self.assertEqual(proc.returncode, 0)

    def test_json_logs(self):
        port = free_port()
        proc = subprocess.Popen([os.path.join(BIN, "dmsg-discovery"), "--listen",
                                 "127.0.0.1:%d" % port, "--log-format", "json"],
                                stderr=subprocess.PIPE, text=True)
        try:
            self.assertTrue(wait_until(
                lambda: http_up("http://127.0.0.1:%d/health" % port), 10))
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=15)
        lines = [json.loads(x) for x in err.splitlines() if x.strip()]
        self.assertTrue(lines)
        for x in lines:
            self.assertIn(x["level"], ("debug", "info", "warn", "error"))
            self.assertIn("service", x)
            self.assertIn("msg", x)


if __name__ == "__main__":
    unittest.main(verbosity=2)

"""Visor transports, publication and autoconnect, black-box: dmsg-discovery,
a dmsg-server, transport-discovery, address-resolver and service-discovery
from build/bin, and visors as processes.  Transports of both types opened
through the API and the CLI, registered in transport-discovery, carrying
pings both ways, deregistered on removal and when a peer dies; published
services present while a visor runs and gone after it stops; a visor with
autoconnect connecting to a published one."""

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
TMP = os.environ.get("SW_TMP", "/tmp")


def gen_config():
    r = subprocess.run([os.path.join(BIN, "visor"), "gen-config"], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


class Visor:
    def __init__(self, env, **extra):
        self.cfg = gen_config()
        self.cfg["dmsg"]["discovery"] = env.dd.base
        self.cfg["transport_discovery"] = env.tpd.base
        self.cfg["address_resolver"] = env.ar.base
        self.cfg["service_discovery"] = env.sd.base
        self.api_port = free_port()
        self.cfg["api_listen"] = "127.0.0.1:%d" % self.api_port
        self.cfg.update(extra)
        self.pk = self.cfg["public_key"]
        self.api = "http://127.0.0.1:%d" % self.api_port
        f = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
        json.dump(self.cfg, f)
        f.close()
        self.log = open(os.path.join(TMP, "visor-%s.log" % self.pk[:8]), "w")
        self.proc = subprocess.Popen([os.path.join(BIN, "visor"), "run", "-c", f.name],
                                     stderr=self.log)
        assert wait_until(lambda: self.proc.poll() is not None or http_up(self.api + "/api/pk"),
                          10)
        assert self.proc.poll() is None, "visor did not start"
        assert wait_until(lambda: request("GET", env.dd.base + "/dmsg-discovery/entry/" +
                                          self.pk).status == 200, 15)

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(15)
        self.log.close()
        return rc

    def cli(self, *args):
        return subprocess.run([os.path.join(BIN, "skywire-cli"), "--api", self.api] +
                              list(args), capture_output=True, text=True, timeout=20)

    def add(self, pk, typ):
        return request("POST", self.api + "/api/transports",
                       json.dumps({"remote_pk": pk, "type": typ}).encode(), timeout=20)

    def tps(self):
        return request("GET", self.api + "/api/transports").json()


class Env:
    pass


class TestTransports(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        e = cls.env = Env()
        e.dd = Daemon("dmsg-discovery")
        port, hport = free_port(), free_port()
        e.srv_log = open(os.path.join(TMP, "tp-dmsg-server.log"), "w")
        e.srv = subprocess.Popen([os.path.join(BIN, "dmsg-server"), "--listen",
                                  "127.0.0.1:%d" % port, "--health-listen",
                                  "127.0.0.1:%d" % hport, "--discovery", e.dd.base],
                                 stderr=e.srv_log)
        assert wait_until(lambda: request("GET", e.dd.base +
                                          "/dmsg-discovery/available_servers").json() != [], 10)
        e.tpd = Daemon("transport-discovery")
        e.ar = Daemon("address-resolver")
        e.sd = Daemon("service-discovery")
        cls.a = Visor(e, publish=[{"type": "visor", "port": 0}, {"type": "vpn", "port": 44}])
        cls.b = Visor(e)

    @classmethod
    def tearDownClass(cls):
        rcs = [v.stop() for v in (cls.a, cls.b)]
        e = cls.env
        e.srv.send_signal(signal.SIGTERM)
        e.srv.wait(15)
        e.srv_log.close()
        for d in (e.sd, e.ar, e.tpd, e.dd):
            d.stop()
        assert rcs == [0, 0], "visors exited with %r" % rcs

    def edge(self, pk):
        return request("GET", self.env.tpd.base + "/transports/edge:" + pk).json()

    def test_1_both_types_registered_and_pinged(self):
        a, b = self.a, self.b
        for typ in ("dmsg", "stcpr"):
            r = a.add(b.pk, typ)
            self.assertEqual(r.status, 201, r.body)
            t = r.json()
            self.assertEqual((t["type"], t["remote_pk"], t["label"], t["state"]),
                             (typ, b.pk, "user", "up"))
            # Idempotent: the same transport again.
            r = a.add(b.pk, typ)
            self.assertEqual((r.status, r.json()["t_id"]), (200, t["t_id"]))
            # Registered by its opener, under the derived id, seen from both edges.
            self.assertTrue(wait_until(lambda: any(x["t_id"] == t["t_id"]
                                                   for x in self.edge(b.pk)), 10))
            reg = request("GET", self.env.tpd.base + "/transports/id:" + t["t_id"]).json()
            self.assertEqual((reg["type"], reg["label"], reg["edges"]),
                             (typ, "user", sorted([a.pk, b.pk])))
            # The peer lists it too, and pings go both ways.
            self.assertTrue(wait_until(lambda: any(x["t_id"] == t["t_id"] for x in b.tps()), 5))
            for v in (a, b):
                r = request("POST", v.api + "/api/transports/%s/ping" % t["t_id"])
                self.assertEqual(r.status, 200, r.body)
                self.assertGreaterEqual(r.json()["rtt_ms"], 0)
            ta = request("GET", a.api + "/api/transports/" + t["t_id"]).json()
            tb = request("GET", b.api + "/api/transports/" + t["t_id"]).json()
            self.assertGreater(ta["rx_bytes"], 0)
            self.assertGreater(tb["rx_bytes"], 0)
            self.assertEqual(ta["tx_bytes"], tb["rx_bytes"])
        self.assertEqual(len(a.tps()), 2)
        s = request("GET", a.api + "/api/summary").json()
        self.assertEqual(len(s["transports"]), 2)

    def test_2_cli_and_removal(self):
        a, b = self.a, self.b
        r = a.cli("tp", "add", b.pk, "--type", "stcpr")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b.pk, r.stdout)
        r = a.cli("--json", "tp", "ls")
        tps = json.loads(r.stdout)
        st = [t for t in tps if t["type"] == "stcpr"][0]
        self.assertIn(st["t_id"], a.cli("tp", "ls").stdout)
        r = a.cli("tp", "ping", st["t_id"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("rtt", r.stdout)
        r = a.cli("tp", "rm", st["t_id"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(wait_until(lambda: request("GET", self.env.tpd.base + "/transports/id:" +
                                                   st["t_id"]).status == 404, 10))
        # The peer noticed the end.
        self.assertTrue(wait_until(lambda: all(t["t_id"] != st["t_id"] for t in b.tps()), 10))
        r = a.cli("tp", "rm", st["t_id"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("404", r.stderr)

    def test_3_bad_requests(self):
        a = self.a
        for body, status in ((b"nope", 400), (b'{"remote_pk":"zz"}', 400),
                             (json.dumps({"remote_pk": a.pk}).encode(), 422),
                             (json.dumps({"remote_pk": self.b.pk, "type": "udp"}).encode(),
                              422)):
            r = request("POST", a.api + "/api/transports", body)
            self.assertEqual(r.status, status, body)
        # A visor nobody knows: a clear error, for both types.
        stranger = gen_config()["public_key"]
        for typ in ("dmsg", "stcpr"):
            r = a.add(stranger, typ)
            self.assertEqual(r.status, 502, r.body)
            self.assertIn("error", r.json())
        self.assertEqual(request("GET", a.api + "/api/transports/nope").status, 400)
        self.assertEqual(request("DELETE", a.api + "/api/transports/"
                                 "00000000-0000-8000-8000-000000000000").status, 404)
        r = a.cli("tp", "add", stranger, "--type", "stcpr")
        self.assertEqual(r.returncode, 1)

    def test_4_peer_death_deregisters(self):
        c = Visor(self.env)
        try:
            for typ in ("dmsg", "stcpr"):
                self.assertEqual(c.add(self.a.pk, typ).status, 201)
            self.assertTrue(wait_until(lambda: len(self.edge(c.pk)) == 2, 10))
            c.stop(signal.SIGKILL)
            # a notices both ends (stream reset, TCP EOF) and deregisters.
            self.assertTrue(wait_until(lambda: all(t["remote_pk"] != c.pk
                                                   for t in self.a.tps()), 15))
            self.assertTrue(wait_until(lambda: self.edge(c.pk) == [], 10))
        finally:
            c.stop(signal.SIGKILL)

    def test_5_publish_and_autoconnect(self):
        sd = self.env.sd.base
        got = request("GET", sd + "/api/services?type=visor").json()
        self.assertIn(self.a.pk + ":0", [s["address"] for s in got])
        got = request("GET", sd + "/api/services?type=vpn").json()
        self.assertIn(self.a.pk + ":44", [s["address"] for s in got])
        # d wants one transport; the only public visor is a.
        d = Visor(self.env, autoconnect={"enabled": True, "min_transports": 1},
                  publish=[{"type": "skysocks", "port": 3}], publish_refresh_s=1)
        try:
            self.assertTrue(wait_until(lambda: any(t["remote_pk"] == self.a.pk and
                                                   t["label"] == "automatic" and
                                                   t["state"] == "up" for t in d.tps()), 20))
            self.assertTrue(wait_until(lambda: any(
                e["label"] == "automatic" for e in self.edge(d.pk)), 10))
            addr = d.pk + ":3"
            self.assertEqual(request("GET", sd + "/api/services/%s?type=skysocks" % addr).status,
                             200)
        finally:
            self.assertEqual(d.stop(), 0)
        # Graceful stop: services deleted and transports deregistered at once.
        self.assertEqual(request("GET", sd + "/api/services/%s?type=skysocks" % addr).status, 404)
        self.assertEqual(self.edge(d.pk), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)

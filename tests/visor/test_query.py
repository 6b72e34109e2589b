"""The visor's lookups, black-box: GET /api/services/{type} and
/api/dmsg/clients-by-server/{pk} answered from the CXO feeds over dmsg
("source":"cxo") once the visor's subscriptions have their snapshots, and
from the services' HTTP APIs ("source":"http") while the feed's publisher
is stopped.

Two service-discovery replicas share one redis: A publishes services-by-pk
on dmsg port 48 (its key is the visor's service_discovery_pk), B only
answers HTTP (the visor's service_discovery URL).  Stopping A leaves the
records reachable over HTTP and the feed's publisher gone, as when a
publisher replica dies.  dmsg-discovery publishes clients-by-server on dmsg
port 46, registered with itself.  A visor without publisher keys answers
from HTTP only."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "py"))
from swclient import (Daemon, Key, Redis, auth_request, free_port, http_up,  # noqa: E402
                      request, wait_until)

BIN = os.path.join(os.environ.get("SW_BUILD", "build"), "bin")


def service(key, typ="vpn", port=44):
    return {"address": "%s:%d" % (key.pk, port), "type": typ, "version": "1.0.0",
            "geo": {"country": "DE", "region": "Berlin"}, "local_ips": ["192.168.0.2"],
            "display_node_ip": False}


class Visor:
    def __init__(self, **cfg):
        r = subprocess.run([os.path.join(BIN, "visor"), "gen-config"], capture_output=True,
                           text=True, timeout=10)
        self.cfg = json.loads(r.stdout)
        self.cfg.update(cfg)
        self.api = "http://127.0.0.1:%d" % free_port()
        self.cfg["api_listen"] = self.api[len("http://"):]
        f = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
        json.dump(self.cfg, f)
        f.close()
        self.proc = subprocess.Popen([os.path.join(BIN, "visor"), "run", "-c", f.name],
                                     stderr=subprocess.PIPE, text=True)
        assert wait_until(lambda: self.proc.poll() is not None or http_up(self.api + "/api/pk"),
                          10)
        assert self.proc.poll() is None, self.proc.stderr.read()

    def get(self, path):
        return request("GET", self.api + path)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=15)
        return self.proc.returncode, err


class SelfRegistered(Daemon):
    """dmsg-discovery publishing its feed over dmsg, registered with itself."""

    def start(self):
        if "--dmsg-discovery" not in self.args:
            self.args += ["--dmsg-discovery", self.base]
        super().start()


class TestQuery(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = Redis()
        cls.dd_key, cls.sd_key = Key(), Key()
        cls.dd = SelfRegistered("dmsg-discovery", "--secret-key", cls.dd_key.seed)
        dd_url = cls.dd.base
        sport, hport = free_port(), free_port()
        cls.srv = subprocess.Popen([os.path.join(BIN, "dmsg-server"), "--listen",
                                    "127.0.0.1:%d" % sport, "--health-listen",
                                    "127.0.0.1:%d" % hport, "--discovery", dd_url],
                                   stderr=subprocess.DEVNULL)
        assert wait_until(lambda: request("GET", dd_url + "/dmsg-discovery/available_servers")
                          .json() != [], 10)
        cls.server_pk = request("GET", dd_url +
                                "/dmsg-discovery/available_servers").json()[0]["static"]
        cls.sd_a = Daemon("service-discovery", "--redis", cls.redis.url, "--secret-key",
                          cls.sd_key.seed, "--dmsg-discovery", dd_url)
        cls.sd_b = Daemon("service-discovery", "--redis", cls.redis.url)
        cls.vpn = Key()
        # Posted to the publisher: a replica's feed follows its own writes (docs/cxo.md).
        r = auth_request(cls.sd_a.base, "POST", "/api/services", cls.vpn, service(cls.vpn))
        assert r.status == 200, r.body
        cls.visor = Visor(dmsg={"discovery": dd_url, "min_sessions": 1},
                          service_discovery=cls.sd_b.base, service_discovery_pk=cls.sd_key.pk,
                          dmsg_discovery_pk=cls.dd_key.pk)

    @classmethod
    def tearDownClass(cls):
        rc, err = cls.visor.stop()
        assert rc == 0, err
        cls.sd_a.stop()
        cls.sd_b.stop()
        cls.srv.send_signal(signal.SIGTERM)
        cls.srv.wait(15)
        cls.dd.stop()
        cls.redis.stop()

    def answer(self, path, source):
        """Wait for an answer from source; return it."""
        got = {}

        def ok():
            r = self.visor.get(path)
            got["j"] = r.json() if r.status == 200 else None
            return got["j"] is not None and got["j"]["source"] == source
        self.assertTrue(wait_until(ok, 30, 0.2), "no %s answer: %s" % (source, got.get("j")))
        return got["j"]

    def test_1_services_from_feed_then_http(self):
        j = self.answer("/api/services/vpn", "cxo")
        self.assertEqual([s["address"] for s in j["services"]], [self.vpn.pk + ":44"])
        self.assertEqual(j["feed"]["publisher"], self.sd_key.pk)
        self.assertEqual(j["feed"]["port"], 48)
        self.assertTrue(j["feed"]["connected"])
        self.assertEqual(self.visor.get("/api/services/skysocks").json()["services"], [])
        self.assertEqual(self.visor.get("/api/services/skysocks").json()["source"], "cxo")
        # A new service reaches the visor through the feed.
        k = Key()
        r = auth_request(self.sd_a.base, "POST", "/api/services", k, service(k, "skysocks", 3))
        self.assertEqual(r.status, 200)
        self.assertTrue(wait_until(lambda: len(self.visor.get("/api/services/skysocks")
                                               .json()["services"]) == 1, 30, 0.2))
        # The publisher (A) stops: B's HTTP answers, with the same records.
        self.sd_a.stop()
        j = self.answer("/api/services/vpn", "http")
        self.assertEqual([s["address"] for s in j["services"]], [self.vpn.pk + ":44"])
        self.assertFalse(j["feed"]["connected"])
        r = subprocess.run([os.path.join(BIN, "skywire-cli"), "--api", self.visor.api, "visor",
                            "vpn-servers"], capture_output=True, text=True, timeout=15)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(self.vpn.pk + ":44", r.stdout)
        self.assertIn("source: http", r.stdout)
        # Back up: the subscription redials and the feed answers again.
        self.sd_a.start()
        self.answer("/api/services/vpn", "cxo")
        r = subprocess.run([os.path.join(BIN, "skywire-cli"), "--api", self.visor.api, "--json",
                            "visor", "pv"], capture_output=True, text=True, timeout=15)
        self.assertEqual(json.loads(r.stdout)["services"], [])

    def test_2_clients_by_server(self):
        vpk = self.visor.cfg["public_key"]
        j = self.answer("/api/dmsg/clients-by-server/" + self.server_pk, "cxo")
        if vpk not in {c["static"] for c in j["clients"]}:
            self.assertTrue(wait_until(lambda: vpk in {c["static"] for c in self.visor.get(
                "/api/dmsg/clients-by-server/" + self.server_pk).json()["clients"]}, 30, 0.2))
        self.assertEqual(j["feed"]["publisher"], self.dd_key.pk)
        self.assertEqual(self.visor.get("/api/dmsg/clients-by-server/zz").status, 400)
        self.assertEqual(self.visor.get("/api/services/nope").status, 400)
        # The CLI reads the same feed over dmsg on its own.
        r = subprocess.run([os.path.join(BIN, "skywire-cli"), "cxo", "tree", self.dd_key.pk,
                            "46", "clients-by-server/" + self.server_pk, "-d", self.dd.base],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(vpk, r.stdout)

    def test_3_without_publisher_keys_http_only(self):
        v = Visor(dmsg={"discovery": self.dd.base, "min_sessions": 1},
                  service_discovery=self.sd_b.base)
        try:
            for _ in range(3):
                j = v.get("/api/services/vpn").json()
                self.assertEqual(j["source"], "http")
                self.assertNotIn("feed", j)
                self.assertEqual(len(j["services"]), 1)
        finally:
            rc, err = v.stop()
            self.assertEqual(rc, 0, err)


if __name__ == "__main__":
    unittest.main(verbosity=2)

"""tpviz black-box: the JSON API against the services' own HTTP answers.

Each discovery service runs as two replicas on one redis: a publisher (its
feed on dmsg) and a plain HTTP one that tpviz is pointed at, so tpviz's
HTTP fallback and its feed read the same records.  tpviz starts before the
transports publisher exists: its answers come from HTTP ("source":"http"),
then from the feed once it has a snapshot ("source":"cxo"), and from HTTP
again when the publisher stops.  After registers, moves, deletes and
expiry, every view equals what the service's HTTP API says.  /api/events
sends one event per change, and GET / is one self-contained page."""

import json
import os
import signal
import socket
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "py"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "transport-discovery"))
from swclient import (Daemon, Key, Redis, auth_request, client_entry, free_port,  # noqa: E402
                      request, wait_until)
from tpclient import entry  # noqa: E402

BIN = os.path.join(os.environ.get("SW_BUILD", "build"), "bin")


class SelfRegistered(Daemon):
    """dmsg-discovery publishing its feed over dmsg, registered with itself."""

    def start(self):
        if "--dmsg-discovery" not in self.args:
            self.args += ["--dmsg-discovery", self.base]
        super().start()


def service(key, country="DE", port=44):
    return {"address": "%s:%d" % (key.pk, port), "type": "vpn", "version": "1.0",
            "geo": {"country": country}}


def by(items, field):
    return {i[field]: i for i in items}


class TestTpviz(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = Redis()
        cls.dd_key, cls.tpd_key, cls.sd_key = Key(), Key(), Key()
        cls.dd = SelfRegistered("dmsg-discovery", "--secret-key", cls.dd_key.seed)
        dd = cls.dd.base
        sport, hport = free_port(), free_port()
        cls.srv = subprocess.Popen([os.path.join(BIN, "dmsg-server"), "--listen",
                                    "127.0.0.1:%d" % sport, "--health-listen",
                                    "127.0.0.1:%d" % hport, "--discovery", dd],
                                   stderr=subprocess.DEVNULL)
        assert wait_until(lambda: request("GET", dd + "/dmsg-discovery/available_servers")
                          .json() != [], 10)
        cls.server_pk = request("GET", dd + "/dmsg-discovery/available_servers").json()[0][
            "static"]
        cls.tpd_b = Daemon("transport-discovery", "--redis", cls.redis.url,
                           "--entry-timeout-s", "3")
        cls.sd_a = Daemon("service-discovery", "--redis", cls.redis.url, "--secret-key",
                          cls.sd_key.seed, "--dmsg-discovery", dd)
        cls.sd_b = Daemon("service-discovery", "--redis", cls.redis.url)
        cls.tpd_a = None
        cls.tv = Daemon("tpviz", "--dmsg-discovery", dd, "--transport-discovery",
                        cls.tpd_b.base, "--service-discovery", cls.sd_b.base,
                        "--transport-discovery-pk", cls.tpd_key.pk,
                        "--service-discovery-pk", cls.sd_key.pk,
                        "--dmsg-discovery-pk", cls.dd_key.pk, "--poll-ms", "100")

    @classmethod
    def tearDownClass(cls):
        cls.tv.stop()
        if cls.tpd_a:
            cls.tpd_a.stop()
        cls.tpd_b.stop()
        cls.sd_a.stop()
        cls.sd_b.stop()
        cls.srv.send_signal(signal.SIGTERM)
        cls.srv.wait(15)
        cls.dd.stop()
        cls.redis.stop()

    def view(self, path):
        r = request("GET", self.tv.base + path)
        return r.json() if r.status == 200 else None

    def same_transports(self, source):
        v = self.view("/api/transports")
        http = request("GET", self.tpd_b.base + "/all-transports").json()
        return v is not None and v["source"] == source and \
            by(v["transports"], "t_id") == by(http, "t_id") and self.graph_is(v)

    def graph_is(self, v):
        """/api/graph (the page's form) says what /api/transports v says."""
        g = self.view("/api/graph")
        if g is None or (g["source"], g["seq"], g["count"]) != (v["source"], v["seq"],
                                                                   v["count"]):
            return False
        self.assertEqual(g["visors"], sorted(set(g["visors"])))
        self.assertEqual(len(g["edges"]), 2 * g["count"])
        drawn = [(t, sorted([g["visors"][g["edges"][2 * i]], g["visors"][g["edges"][2 * i + 1]]]),
                  g["types"][g["type"][i]]) for i, t in enumerate(g["t_id"])]
        return drawn == [(t["t_id"], sorted(t["edges"]), t["type"]) for t in v["transports"]]

    def same_services(self):
        v = self.view("/api/services?type=vpn")
        http = request("GET", self.sd_b.base + "/api/services?type=vpn").json()
        return v is not None and v["source"] == "cxo" and \
            by(v["services"], "address") == by(http, "address")

    def clients_of(self, server):
        v = self.view("/api/dmsg/servers/clients")
        http = request("GET", self.dd.base + "/dmsg-discovery/clients-by-server/" + server)
        mine = by(v["servers"].get(server, []), "static") if v else None
        return v is not None and v["source"] == "cxo" and mine == by(http.json(), "static")

    def test_1_transports_http_then_cxo_then_http(self):
        a, b, c = Key(), Key(), Key()
        ab = entry(a, b)
        self.assertEqual(auth_request(self.tpd_b.base, "POST", "/transports/", a, [ab]).status,
                         201)
        # No publisher yet: the service's HTTP answers.
        self.assertTrue(wait_until(lambda: self.same_transports("http"), 10),
                        self.view("/api/transports"))
        type(self).tpd_a = Daemon("transport-discovery", "--redis", self.redis.url,
                                  "--secret-key", self.tpd_key.seed, "--dmsg-discovery",
                                  self.dd.base, "--entry-timeout-s", "3")
        tpd = self.tpd_a.base
        self.assertTrue(wait_until(lambda: self.same_transports("cxo"), 15),
                        self.view("/api/transports"))
        # Register, delete: the feed view keeps equal to the HTTP answer.
        ac = entry(a, c, "stcpr")
        self.assertEqual(auth_request(tpd, "POST", "/transports/", a, [ab, ac]).status, 201)
        self.assertTrue(wait_until(lambda: self.same_transports("cxo") and ac["t_id"] in by(
            self.view("/api/transports")["transports"], "t_id"), 5))
        self.assertEqual(auth_request(tpd, "DELETE", "/transports/id:" + ab["t_id"], a).status,
                         200)
        self.assertTrue(wait_until(lambda: self.same_transports("cxo") and ab["t_id"] not in by(
            self.view("/api/transports")["transports"], "t_id"), 5))
        # Expiry (3 s): gone from both.
        self.assertTrue(wait_until(lambda: self.same_transports("cxo") and
                                   self.view("/api/transports")["count"] == 0, 15),
                        self.view("/api/transports"))
        # The publisher stops: back to HTTP, still equal.
        self.assertEqual(auth_request(self.tpd_b.base, "POST", "/transports/", b,
                                      [entry(b, c)]).status, 201)
        self.tpd_a.stop()
        type(self).tpd_a = None
        self.assertTrue(wait_until(lambda: self.same_transports("http") and
                                   self.view("/api/transports")["count"] == 1, 15),
                        self.view("/api/transports"))

    def test_2_services_register_move_delete(self):
        k = Key()
        self.assertEqual(auth_request(self.sd_a.base, "POST", "/api/services", k,
                                      service(k)).status, 200)
        self.assertTrue(wait_until(lambda: self.same_services() and len(
            self.view("/api/services?type=vpn")["services"]) == 1, 10),
            self.view("/api/services?type=vpn"))
        self.assertEqual(auth_request(self.sd_a.base, "POST", "/api/services", k,
                                      service(k, "FR")).status, 200)
        self.assertTrue(wait_until(lambda: self.same_services() and self.view(
            "/api/services?type=vpn")["services"][0]["geo"]["country"] == "FR", 5))
        self.assertEqual(auth_request(self.sd_a.base, "DELETE", "/api/services/%s:44?type=vpn"
                                      % k.pk, k).status, 200)
        self.assertTrue(wait_until(lambda: self.same_services() and self.view(
            "/api/services?type=vpn")["services"] == [], 5))
        self.assertEqual(request("GET", self.tv.base + "/api/services").status, 400)
        self.assertEqual(request("GET", self.tv.base + "/api/services?type=x").status, 422)

    def test_3_clients_register_move_delete(self):
        k, other = Key(), Key()
        dd = self.dd.base
        r = request("POST", dd + "/dmsg-discovery/entry/", client_entry(k, 1, [self.server_pk]))
        self.assertEqual(r.status, 200, r.body)
        self.assertTrue(wait_until(lambda: self.clients_of(self.server_pk) and k.pk in by(
            self.view("/api/dmsg/servers/clients")["servers"][self.server_pk], "static"), 10))
        # A move: the client now delegates to another server only.
        r = request("POST", dd + "/dmsg-discovery/entry/", client_entry(k, 2, [other.pk]))
        self.assertEqual(r.status, 200, r.body)

        def moved():
            s = self.view("/api/dmsg/servers/clients")["servers"]
            return self.clients_of(self.server_pk) and self.clients_of(other.pk) and \
                k.pk not in by(s.get(self.server_pk, []), "static") and \
                k.pk in by(s.get(other.pk, []), "static")
        self.assertTrue(wait_until(moved, 5), self.view("/api/dmsg/servers/clients"))
        self.assertEqual(auth_request(dd, "DELETE", "/dmsg-discovery/entry/" + k.pk, k).status,
                         200)
        self.assertTrue(wait_until(lambda: self.clients_of(other.pk) and other.pk not in
                                   self.view("/api/dmsg/servers/clients")["servers"], 5))

    def test_4_events_and_page(self):
        host, port = "127.0.0.1", self.tv.port
        s = socket.create_connection((host, port), timeout=10)
        s.sendall(b"GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n")
        buf = b""
        while b"retry:" not in buf:
            buf += s.recv(4096)
        self.assertIn(b"text/event-stream", buf)
        k = Key()
        self.assertEqual(auth_request(self.sd_a.base, "POST", "/api/services", k,
                                      service(k)).status, 200)
        # Other feeds may speak too (an expiry); wait for this change's event.
        ev = None
        while ev is None:
            buf += s.recv(4096)
            for line in buf.split(b"\n"):
                if line.startswith(b"data: "):
                    e = json.loads(line[6:])
                    if e["feed"] == "services-by-pk":
                        ev = e
        self.assertGreaterEqual(ev["changed"], 1)
        self.assertIn("seq", ev)
        s.close()
        r = request("GET", self.tv.base + "/")
        self.assertIn("text/html", r.headers.get("Content-Type", ""))
        self.assertEqual(r.status, 200)
        page = r.body.decode()
        self.assertIn("EventSource(\"/api/events\")", page)
        # Self-contained: nothing fetched from elsewhere.
        for ref in ("http://", "https://", "//cdn", "<link "):
            self.assertNotIn(ref, page.replace('xmlns="http://www.w3.org/2000/svg"', "")
                             .replace('"http://www.w3.org/2000/svg"', ""))


if __name__ == "__main__":
    unittest.main()

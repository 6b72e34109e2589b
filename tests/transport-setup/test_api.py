"""transport-setup, black-box: dmsg-discovery, a dmsg-server,
transport-discovery and address-resolver from build/bin, transport-setup
with one trusted operator key, and visors as processes: two that list
transport-setup's key in transport_setup_pks, one that does not.

Through the HTTP API: add, list and remove dmsg and stcpr transports
(label skycoin, shown by `skywire-cli tp ls`); an untrusted caller gets 403
and no visor is asked; a visor that does not list transport-setup's key
closes the stream (502 naming it); an unknown visor is a 502 saying it has
no entry in dmsg discovery (the dial's answer, not the deadline's); from ==
to and bad fields are 422."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "py"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "visor"))
from swclient import Daemon, Key, auth_request, metric, request, wait_until  # noqa: E402
from dmsghttp import over_dmsg, raw_request  # noqa: E402
import test_transports as tt  # noqa: E402


class TestTransportSetup(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.op = Key()
        cls.ts_key = Key()
        cls.outsider = Key()
        # The services the visors need, as test_transports starts them.
        e = cls.env = tt.Env()
        e.dd = Daemon("dmsg-discovery")
        port, hport = tt.free_port(), tt.free_port()
        e.srv_log = open(os.path.join(tt.TMP, "ts-dmsg-server.log"), "w")
        e.srv = tt.subprocess.Popen([os.path.join(tt.BIN, "dmsg-server"), "--listen",
                                     "127.0.0.1:%d" % port, "--health-listen",
                                     "127.0.0.1:%d" % hport, "--discovery", e.dd.base],
                                    stderr=e.srv_log)
        assert wait_until(lambda: request("GET", e.dd.base +
                                          "/dmsg-discovery/available_servers").json() != [], 10)
        e.tpd = Daemon("transport-discovery")
        e.ar = Daemon("address-resolver")
        e.sd = Daemon("service-discovery")
        cls.ts = Daemon("transport-setup", "--public-key", cls.ts_key.pk, "--secret-key",
                        cls.ts_key.seed, "--dmsg-discovery", e.dd.base, "--trusted-pks",
                        cls.op.pk)
        cls.a = tt.Visor(e, transport_setup_pks=[cls.ts_key.pk])
        cls.b = tt.Visor(e, transport_setup_pks=[cls.ts_key.pk])
        cls.c = tt.Visor(e)  # does not trust transport-setup
        assert wait_until(lambda: request("GET", cls.ts.base + "/health").json()
                          ["checks"].get("dmsg") == "ok", 15)

    @classmethod
    def tearDownClass(cls):
        rcs = [v.stop() for v in (cls.a, cls.b, cls.c)]
        e = cls.env
        e.srv.send_signal(tt.signal.SIGTERM)
        e.srv.wait(15)
        e.srv_log.close()
        rc = cls.ts.stop()
        for d in (e.sd, e.ar, e.tpd, e.dd):
            d.stop()
        assert rcs == [0, 0, 0] and rc == 0, "exits %r %r" % (rcs, rc)

    def call(self, method, path, body=b"", key=None):
        return auth_request(self.ts.base, method, path, key or self.op, body)

    def calls(self):
        total = 0.0
        for line in request("GET", self.ts.base + "/metrics").body.decode().splitlines():
            if line.startswith("transport_setup_visor_calls_total{"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def test_1_add_list_remove(self):
        a, b = self.a, self.b
        for typ in ("dmsg", "stcpr"):
            r = self.call("POST", "/add", {"from": a.pk, "to": b.pk, "type": typ})
            self.assertEqual(r.status, 200, r.body)
            t = r.json()
            self.assertEqual((t["remote_pk"], t["type"], t["label"]), (b.pk, typ, "skycoin"))
            r = self.call("GET", "/%s/transports" % a.pk)
            self.assertEqual(r.status, 200, r.body)
            self.assertIn(t["t_id"], [x["t_id"] for x in r.json()])
            mine = [x for x in r.json() if x["t_id"] == t["t_id"]][0]
            self.assertEqual(mine["label"], "skycoin")
            self.assertTrue(wait_until(lambda: any(x["t_id"] == t["t_id"] for x in b.tps()),
                                       5))
            cli = a.cli("tp", "ls")
            self.assertIn("skycoin", cli.stdout)
            self.assertTrue(wait_until(lambda: request(
                "GET", self.env.tpd.base + "/transports/id:" + t["t_id"]).status == 200, 10))
            reg = request("GET", self.env.tpd.base + "/transports/id:" + t["t_id"]).json()
            self.assertEqual(reg["label"], "skycoin")
            r = self.call("POST", "/remove", {"from": a.pk, "t_id": t["t_id"]})
            self.assertEqual((r.status, r.json()), (200, {"removed": True}), r.body)
            self.assertTrue(all(x["t_id"] != t["t_id"] for x in a.tps()))
            r = self.call("POST", "/remove", {"from": a.pk, "t_id": t["t_id"]})
            self.assertEqual(r.status, 404, r.body)

    def test_2_untrusted_is_403_and_no_visor_is_asked(self):
        before = self.calls()
        for method, path, body in (("POST", "/add", {"from": self.a.pk, "to": self.b.pk,
                                                     "type": "dmsg"}),
                                   ("POST", "/remove", {"from": self.a.pk,
                                                        "t_id": "0" * 8 + "-0000-8000-8000-" +
                                                        "0" * 12}),
                                   ("GET", "/%s/transports" % self.a.pk, b"")):
            r = self.call(method, path, body, key=self.outsider)
            self.assertEqual(r.status, 403, r.body)
            self.assertIn("error", r.json())
        # Unsigned: 401.
        r = request("POST", self.ts.base + "/add", {"from": self.a.pk, "to": self.b.pk,
                                                    "type": "dmsg"})
        self.assertEqual(r.status, 401)
        self.assertEqual(self.calls(), before)
        self.assertEqual(self.a.tps(), [])

    def test_3_visor_without_our_key_closes_the_stream(self):
        r = self.call("POST", "/add", {"from": self.c.pk, "to": self.a.pk, "type": "dmsg"})
        self.assertEqual(r.status, 502, r.body)
        self.assertIn("transport_setup_pks", r.json()["error"])
        self.assertEqual(self.c.tps(), [])

    def test_4_unknown_visor_is_502_naming_why(self):
        # What the operator needs: the reason (no such visor on dmsg), from the dial's own
        # answer, not the 15 s deadline's ("did not answer within the 15 s deadline"): the
        # discovery lookup fails at once, so the request is not held until the deadline.
        before = metric(self.ts.base, "transport_setup_visor_calls_total", 'result="unreachable"')
        r = self.call("POST", "/add", {"from": Key().pk, "to": self.a.pk, "type": "dmsg"})
        self.assertEqual(r.status, 502, r.body)
        self.assertEqual(r.json()["error"],
                         "visor unreachable over dmsg: no entry for the peer in discovery")
        self.assertEqual(metric(self.ts.base, "transport_setup_visor_calls_total",
                                'result="unreachable"'), before + 1)
        self.assertEqual(self.a.tps(), [])

    def test_5_bad_requests(self):
        a = self.a
        for body in ({"from": a.pk, "to": a.pk, "type": "dmsg"},
                     {"from": a.pk, "to": self.b.pk, "type": "udp"},
                     {"from": "zz", "to": self.b.pk, "type": "dmsg"},
                     {"from": a.pk, "type": "dmsg"}):
            r = self.call("POST", "/add", body)
            self.assertEqual(r.status, 422, (body, r.body))
        r = self.call("POST", "/remove", {"from": a.pk, "t_id": "nope"})
        self.assertEqual(r.status, 422)
        r = self.call("POST", "/add", b"not json")
        self.assertEqual(r.status, 400)
        self.assertEqual(request("GET", self.ts.base + "/health").status, 200)
        self.assertGreaterEqual(metric(self.ts.base, "transport_setup_visor_calls_total"), 0)


    def test_5_the_api_on_dmsg_port_80(self):
        # The same server as on TCP: /health, and httpauth (unsigned: 401).
        def dmsg(method, path, body=b""):
            return over_dmsg(tt.BIN, self.env.dd.base, self.ts_key.pk,
                             raw_request(method, path, body))
        got = []
        self.assertTrue(wait_until(lambda: got.append(dmsg("GET", "/health")) or
                                   got[-1][0] == 200, 15), got[-1:])
        self.assertEqual(tt.json.loads(got[-1][1])["checks"],
                         request("GET", self.ts.base + "/health").json()["checks"])
        status, _ = dmsg("POST", "/add", tt.json.dumps({"from": self.a.pk, "to": self.b.pk,
                                                        "type": "dmsg"}).encode())
        self.assertEqual(status, 401)


if __name__ == "__main__":
    unittest.main()

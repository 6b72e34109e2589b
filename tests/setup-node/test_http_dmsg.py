"""setup-node's HTTP routes (/health, /metrics) on dmsg port 80, as every
service with a dmsg identity serves them: dmsg-discovery, a dmsg-server and
transport-discovery from build/bin, setup-node with a key of its own, and
an operator's raw HTTP over a dmsg stream (dmsg-cat) answered as over TCP."""
import json
import os
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "py"))
from swclient import Daemon, DmsgServer, Key, free_port, request, wait_until  # noqa: E402
from dmsghttp import over_dmsg, raw_request  # noqa: E402

BIN = os.path.join(os.environ.get("SW_BUILD", "build"), "bin")
TMP = os.environ.get("SW_TMP", "/tmp")


class TestSetupNodeHttpDmsg(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.key = Key()
        cls.dd = Daemon("dmsg-discovery")
        cls.srv = DmsgServer(cls.dd.base, "sn-http-dmsg-server.log")
        cls.log = open(os.path.join(TMP, "sn-http-dmsg.log"), "ab")
        cls.tpd = Daemon("transport-discovery")
        cls.health = "http://127.0.0.1:%d" % free_port()
        cls.sn = subprocess.Popen([os.path.join(BIN, "setup-node"), "--secret-key",
                                   cls.key.seed, "--dmsg-discovery", cls.dd.base,
                                   "--transport-discovery", cls.tpd.base, "--health-listen",
                                   cls.health[len("http://"):]], stderr=cls.log)

        def up():
            try:
                return request("GET", cls.health + "/health").json()["checks"]["dmsg"] == "ok"
            except (OSError, ValueError, KeyError):
                return False
        assert wait_until(up, 15), "setup-node did not get a dmsg session"

    @classmethod
    def tearDownClass(cls):
        cls.sn.send_signal(signal.SIGTERM)
        rc = cls.sn.wait(15)
        cls.srv.stop()
        cls.tpd.stop()
        cls.dd.stop()
        cls.log.close()
        assert rc == 0, "setup-node exit %r" % rc

    def dmsg(self, path):
        return over_dmsg(BIN, self.dd.base, self.key.pk, raw_request("GET", path))

    def test_health_over_dmsg(self):
        # The entry is posted a moment after the session: the first dials may find none.
        got = []
        self.assertTrue(wait_until(lambda: got.append(self.dmsg("/health")) or
                                   got[-1][0] == 200, 15), got[-1:])
        self.assertEqual(json.loads(got[-1][1])["checks"],
                         request("GET", self.health + "/health").json()["checks"])

    def test_same_routes_over_dmsg(self):
        self.assertTrue(wait_until(lambda: self.dmsg("/health")[0] == 200, 15))
        status, body = self.dmsg("/metrics")
        self.assertEqual(status, 200)
        self.assertIn(b"setup_requests_total", body)
        status, body = self.dmsg("/no/such/route")
        self.assertEqual(status, 404)
        self.assertIn("error", json.loads(body))


if __name__ == "__main__":
    unittest.main()

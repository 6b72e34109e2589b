"""tpviz against hostile records: every answer stays one JSON value, the page stays whole.

tpviz reads a fake service (no publisher keys: the HTTP fallback, which
shares the record path with the feed) whose records hold quotes,
backslashes, control characters, "</script>", U+2028, invalid UTF-8,
numbers past any range, keys that are not hex, duplicate keys and records
of the wrong shape.  Every answer (/api/*, the events) must parse as strict
JSON with no "<", ">" or "&" in its bytes (nothing can end a script or HTML
context it is put in); a record whose fields the page reads without their
documented shape (a service's address, a client's or server's key) is left
out, the others are kept with their values intact; and in a real browser
(when chromium is installed) the page renders them and runs no script of
theirs."""

import json
import os
import socket
import sys
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "py"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "transport-discovery"))
from swclient import Daemon, Key, request, wait_until  # noqa: E402
from tpclient import entry  # noqa: E402

EVIL = "\"\\</script><script>window.pwned=1</script><!-- \u2028\u2029\x01\x1f\x7f &amp; é"
A, B, C, SRV = Key(), Key(), Key(), Key()
SRV2 = Key()

GOOD_TP = dict(entry(A, B), note=EVIL, extra={"k" + EVIL: [EVIL, 1e308, -0.0]})
TRANSPORTS = [
    GOOD_TP,
    dict(entry(B, C, "stcpr"), n=123456789012345678901234567890),
    {"t_id": EVIL, "edges": [EVIL, "zz"], "type": EVIL},  # listed, not drawn
]
# Raw text: what Python's json cannot write (out-of-range numbers, bad UTF-8, a key twice).
TRANSPORTS_RAW = (json.dumps(TRANSPORTS)[:-1] +
                  ', {"t_id": "big", "n": 1e999, "m": -1e999}'
                  ', {"t_id": "dup", "a": 1, "a": 2}'
                  ', {"t_id": "utf8", "s": "\xff\xfe\xc0\xaf"}]').encode("latin-1")

GOOD_SVC = {"address": "%s:44" % A.pk, "type": "vpn", "version": "1.0",
            "geo": {"country": {"toString": 1, "valueOf": 1}}, "note": EVIL}
GOOD_SVC2 = {"address": "%s:45" % B.pk, "type": "vpn", "geo": {"country": EVIL}}
SERVICES = [
    GOOD_SVC, GOOD_SVC2,
    {"address": EVIL, "type": "vpn"},
    {"address": "%s:99999" % C.pk, "type": "vpn"},
    {"address": "%s:44" % C.pk.upper(), "type": "vpn"},
    {"address": 5, "type": "vpn"},
    {"type": "vpn"},
    "%s:44" % C.pk, 7, None, [],
]

GOOD_CLIENT = {"static": C.pk, "delegated": [EVIL], "seq": 1e300}
CLIENTS = [GOOD_CLIENT, {"static": EVIL}, {"static": 12}, EVIL]
SERVERS = [{"static": SRV.pk}, {"static": SRV2.pk}, {"static": EVIL},
           {"static": SRV.pk + "\"x"}, {"static": SRV.pk[:-1] + "\""}, {"static": None}]


class Fake(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        p = self.path
        if p == "/all-transports":
            body = TRANSPORTS_RAW
        elif p.startswith("/api/services?type="):
            body = json.dumps(SERVICES if p.endswith("=vpn") else []).encode()
        elif p == "/dmsg-discovery/all_servers":
            body = json.dumps(SERVERS).encode()
        elif p == "/dmsg-discovery/clients-by-server/" + SRV.pk:
            body = json.dumps(CLIENTS).encode()
        elif p.startswith("/dmsg-discovery/clients-by-server/"):
            body = b"[]"
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def strict(body):
    """body as JSON, refusing what JSON does not have (NaN, Infinity) and invalid UTF-8."""
    def no_constant(c):
        raise ValueError("not JSON: " + c)
    return json.loads(body.decode("utf-8"), parse_constant=no_constant)


class TestHostile(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fake = ThreadingHTTPServer(("127.0.0.1", 0), Fake)
        threading.Thread(target=cls.fake.serve_forever, daemon=True).start()
        url = "http://127.0.0.1:%d" % cls.fake.server_address[1]
        cls.tv = Daemon("tpviz", "--dmsg-discovery", url, "--transport-discovery", url,
                        "--service-discovery", url, "--poll-ms", "50")

    @classmethod
    def tearDownClass(cls):
        cls.tv.stop()
        cls.fake.shutdown()

    def answer(self, path):
        r = request("GET", self.tv.base + path)
        if r.status != 200:
            return None
        for c in b"<>&":
            self.assertNotIn(c, r.body, path)
        return strict(r.body)

    def ready(self):
        c = self.answer("/api/dmsg/servers/clients")
        return all(self.answer(p) for p in ("/api/transports", "/api/services?type=vpn")) and \
            c is not None and SRV.pk in c["servers"] and c["servers"][SRV.pk]

    def test_answers_are_json_misfits_left_out(self):
        self.assertTrue(wait_until(self.ready, 15))
        tps = {t["t_id"]: t for t in self.answer("/api/transports")["transports"]}
        self.assertEqual(tps[GOOD_TP["t_id"]], GOOD_TP)
        self.assertEqual(tps[EVIL]["edges"], [EVIL, "zz"])
        self.assertEqual(tps["big"]["n"], None)  # not a number JSON has: cJSON's null
        self.assertEqual(tps[TRANSPORTS[1]["t_id"]]["n"], float(TRANSPORTS[1]["n"]))
        self.assertIn("dup", tps)
        self.assertNotIn("utf8", tps)
        g = self.answer("/api/graph")
        self.assertEqual(g["count"], 2)
        self.assertEqual(sorted(g["t_id"]), sorted([TRANSPORTS[0]["t_id"],
                                                    TRANSPORTS[1]["t_id"]]))
        for t in ("visor", "skysocks"):
            self.assertEqual(self.answer("/api/services?type=" + t)["services"], [])
        svcs = self.answer("/api/services?type=vpn")["services"]
        addr = lambda s: s["address"]  # noqa: E731
        self.assertEqual(sorted(svcs, key=addr), sorted([GOOD_SVC, GOOD_SVC2], key=addr))
        srv = self.answer("/api/dmsg/servers/clients")["servers"]
        self.assertEqual(srv, {SRV.pk: [GOOD_CLIENT], SRV2.pk: []})

    def test_events_are_json(self):
        s = socket.create_connection(("127.0.0.1", self.tv.port), timeout=10)
        s.sendall(b"GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n")
        buf = b""
        while b"retry:" not in buf:
            buf += s.recv(4096)
        # A change to come: the fake's transports gain one.
        global TRANSPORTS_RAW
        old = TRANSPORTS_RAW
        TRANSPORTS_RAW = old[:-1] + b", " + json.dumps({"t_id": EVIL + "2"}).encode() + b"]"
        try:
            feeds = set()
            while "all-transports" not in feeds:
                buf += s.recv(4096)
                lines = buf.split(b"\n")
                buf = lines.pop()
                for line in lines:
                    if line.startswith(b"data: "):
                        self.assertNotIn(b"<", line)
                        feeds.add(strict(line[6:])["feed"])
        finally:
            TRANSPORTS_RAW = old
            s.close()

    def test_page_in_a_browser(self):
        from browser import Browser, chromium_path
        if chromium_path() is None:
            self.skipTest("needs Debian's chromium (make deps)")
        self.assertTrue(wait_until(self.ready, 15))
        b = Browser(os.path.join(os.environ.get("SW_TMP", "/tmp"), "hostile-chromium.log"))
        try:
            b.navigate(self.tv.base + "/")
            self.assertTrue(b.wait("document.body.dataset.ready === '1'", 30))
            self.assertIsNone(b.eval("window.pwned === undefined ? null : window.pwned"))
            self.assertEqual(b.eval("document.querySelectorAll('script').length"), 1)
            self.assertEqual(b.eval("document.getElementById('n-services').textContent"), "2")
            self.assertEqual(b.eval("document.getElementById('n-transports').textContent"), "2")
            self.assertEqual(b.eval("document.getElementById('n-servers').textContent"), "2")
            self.assertEqual(b.eval("document.getElementById('status').textContent"), "live")
        finally:
            b.close()


if __name__ == "__main__":
    unittest.main()

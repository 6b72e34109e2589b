"""NAT type detection against real NATs: a "public" namespace with the
stun-server on two addresses, a router namespace (ip_forward, iptables
MASQUERADE toward the public side) and the visor's namespace behind it.
(a) no NAT (the public side routes to the visor's network) -> open,
(b) MASQUERADE (endpoint-independent mapping, conntrack's port-restricted
filtering) -> port-restricted-cone, (c) MASQUERADE --random (a new port per
destination) -> symmetric.  The visor reports it in /api/summary and
`skywire-cli visor info`."""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from nslib import BIN, Net, gen_visor_config, require_root, sh, wait_until  # noqa: E402

STUN1, STUN2 = "198.18.0.1", "198.18.0.2"


def build(net, mode):
    pub, rtr, vis = net.ns("pub"), net.ns("rtr"), net.ns("vis")
    net.link(pub, "198.18.1.254/24", rtr, "198.18.1.1/24")
    net.link(rtr, "10.77.0.1/24", vis, "10.77.0.2/24")
    sh("ip", "addr", "add", STUN1 + "/32", "dev", "lo", ns=pub)
    sh("ip", "addr", "add", STUN2 + "/32", "dev", "lo", ns=pub)
    sh("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=rtr)
    sh("ip", "route", "add", "default", "via", "198.18.1.254", ns=rtr)
    sh("ip", "route", "add", "default", "via", "10.77.0.1", ns=vis)
    if mode == "open":
        sh("ip", "route", "add", "10.77.0.0/24", "via", "198.18.1.1", ns=pub)
    else:
        rule = ["iptables", "-t", "nat", "-A", "POSTROUTING", "-s", "10.77.0.0/24",
                "-j", "MASQUERADE"]
        if mode == "symmetric":
            rule.append("--random")
        sh(*rule, ns=rtr)
    cfg = net.config({"type": "stun-server", "listen": STUN1 + ":3478",
                      "secondary_ip": STUN2, "alt_port": 3479,
                      "health_listen": "127.0.0.1:9095"})
    net.start(pub, [os.path.join(BIN, "stun-server"), "-c", cfg], "stun")
    assert wait_until(lambda: net.http(pub, "GET", "http://127.0.0.1:9095/health")[0] == 200,
                      10), "stun-server did not start"
    return vis


def visor_in(net, ns):
    c = gen_visor_config()
    c["stun_servers"] = [STUN1 + ":3478"]
    c["api_listen"] = "127.0.0.1:8000"
    net.start(ns, [os.path.join(BIN, "visor"), "run", "-c", net.config(c)], "visor")
    return c


@require_root
class TestNatType(unittest.TestCase):
    def detect(self, mode, then=None):
        net = Net()
        try:
            vis = build(net, mode)
            visor_in(net, vis)

            def nat():
                st, body = net.http(vis, "GET", "http://127.0.0.1:8000/api/summary")
                if st == 200 and not body["nat"]["running"] and body["nat"]["checked"] > 0:
                    return body
                return None
            summary = wait_until(nat, 20)
            self.assertIsNotNone(summary, "no NAT result in /api/summary")
            cli = sh(os.path.join(BIN, "skywire-cli"), "--api", "http://127.0.0.1:8000",
                     "visor", "info", ns=vis)
            self.assertIn(summary["nat_type"], cli.stdout)
            raw = json.loads(sh(os.path.join(BIN, "skywire-cli"), "--api",
                                "http://127.0.0.1:8000", "--json", "visor", "info",
                                ns=vis).stdout)
            self.assertEqual(raw["nat_type"], summary["nat_type"])
            if then is not None:
                then(net, vis)
            return summary
        finally:
            net.close()

    def test_open(self):
        def address_change(net, vis):
            def runs():
                st, body = net.http(vis, "GET", "http://127.0.0.1:8000/api/summary")
                return body["nat"]["runs"] if st == 200 and not body["nat"]["running"] else 0
            before = runs()
            dev = sh("ip", "-o", "-4", "addr", "show", ns=vis).stdout
            dev = [line.split()[1] for line in dev.splitlines() if "10.77.0.2" in line][0]
            sh("ip", "addr", "add", "10.77.0.3/24", "dev", dev, ns=vis)
            # The host's addresses are compared every 5 s: a new run follows.
            self.assertTrue(wait_until(lambda: runs() > before, 12),
                            "no NAT re-check after an address change")
        s = self.detect("open", address_change)
        self.assertEqual(s["nat_type"], "open")
        self.assertTrue(s["nat"]["mapped"].startswith("10.77.0.2:"), s)

    def test_port_restricted_cone(self):
        s = self.detect("masquerade")
        self.assertEqual(s["nat_type"], "port-restricted-cone")
        self.assertTrue(s["nat"]["mapped"].startswith("198.18.1.1:"), s)

    def test_symmetric(self):
        def no_sudph(net, vis):
            peer = gen_visor_config()["public_key"]
            st, body = net.http(vis, "POST", "http://127.0.0.1:8000/api/transports",
                                {"remote_pk": peer, "type": "sudph"})
            self.assertEqual(st, 502, body)
            self.assertIn("symmetric NAT", body["error"])
        s = self.detect("symmetric", no_sudph)
        self.assertEqual(s["nat_type"], "symmetric")

    def test_no_stun_answer_is_udp_blocked(self):
        net = Net()
        try:
            vis = build(net, "masquerade")
            sh("iptables", "-A", "FORWARD", "-p", "udp", "-j", "DROP",
               ns=vis.replace("-vis", "-rtr"))
            visor_in(net, vis)
            s = wait_until(lambda: (lambda r: r[1] if r[0] == 200 and
                                    r[1]["nat"]["checked"] > 0 else None)(
                net.http(vis, "GET", "http://127.0.0.1:8000/api/summary")), 20)
            self.assertEqual(s["nat_type"], "udp-blocked")
        finally:
            net.close()


if __name__ == "__main__":
    unittest.main()

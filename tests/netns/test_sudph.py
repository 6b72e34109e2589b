"""sudph through real NATs: a "public" namespace runs dmsg-discovery, a
dmsg-server, transport-discovery, service-discovery, the address-resolver
and the stun-server (two addresses); two router namespaces MASQUERADE their
visor's network toward it and, as home routers do, drop unsolicited input
from the public side (port-restricted cone NATs).  Visor A opens a sudph
transport to visor B through the address-resolver (resolve -> dial -> both
punch), and pings over it; with 5 % of the UDP datagrams crossing the public
network dropped at random (iptables statistic), 10,000 packets arrive
complete and in order, and a 2-hop route A -sudph- B -stcpr- C (C on the
public side; setup-node and route-finder in the public process) carries a
chat of 100 messages in order and 65000-byte chats both ways (two sudph
fragments each); without the loss, pings of the largest route-group message
(65498 bytes: a 65519-byte packet) are echoed intact, and a stream of them
sixteen times sudph's send queue waits for room instead of losing any,
A -> C (the first hop is sudph) and C -> A (B feeds sudph), and a stream
A -> C survives C stopping (SIGSTOP) midway: B holds and stops delivering
from sudph until C reads again; then B vanishes
(SIGKILL) and A notices within the keep-alive limit (30 s without
traffic)."""

import os
import signal
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from nslib import BIN, Net, gen_visor_config, require_root, sh, wait_until  # noqa: E402

PUB, PUB2 = "198.18.0.1", "198.18.0.2"
# 5 % of the UDP IP packets crossing the public network (a datagram's IP fragments each).
LOSS = ["FORWARD", "-p", "udp", "-m", "statistic", "--mode", "random", "--probability", "0.05",
        "-j", "DROP"]
API = "http://127.0.0.1:8000"


def svc(net, pub, name, *args):
    return net.start(pub, [os.path.join(BIN, name)] + list(args), name)


def build(net):
    pub = net.ns("pub")
    sh("ip", "addr", "add", PUB + "/32", "dev", "lo", ns=pub)
    sh("ip", "addr", "add", PUB2 + "/32", "dev", "lo", ns=pub)
    sh("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=pub)
    sides = {}
    for i, side in ((1, "a"), (2, "b")):
        rtr, vis = net.ns("r" + side), net.ns("v" + side)
        wan, _ = net.link(rtr, "198.18.%d.1/24" % i, pub, "198.18.%d.254/24" % i)
        net.link(rtr, "10.%d.0.1/24" % i, vis, "10.%d.0.2/24" % i)
        sh("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=rtr)
        sh("ip", "route", "add", "default", "via", "198.18.%d.254" % i, ns=rtr)
        sh("ip", "route", "add", "default", "via", "10.%d.0.1" % i, ns=vis)
        sh("iptables", "-t", "nat", "-A", "POSTROUTING", "-o", wan, "-j", "MASQUERADE", ns=rtr)
        # A home router's firewall: nothing from outside that it did not ask for.
        sh("iptables", "-A", "INPUT", "-i", wan, "-m", "conntrack", "--ctstate",
           "NEW,INVALID", "-j", "DROP", ns=rtr)
        sh("iptables", "-A", "FORWARD", "-i", wan, "-m", "conntrack", "--ctstate",
           "NEW,INVALID", "-j", "DROP", ns=rtr)
        sides[side] = vis
    dd = "http://%s:9090" % PUB
    tpd = "http://%s:9091" % PUB
    sn = gen_visor_config()
    # One process, one embedded store: route-finder reads transport-discovery's.
    dep = {"log": {"level": "info", "format": "text"}, "health_addr": "127.0.0.1:9100",
           "services": [
               {"type": "dmsg-discovery", "listen": PUB + ":9090"},
               {"type": "dmsg-server", "listen": PUB + ":8080",
                "health_listen": "127.0.0.1:8082", "discovery": dd},
               {"type": "transport-discovery", "listen": PUB + ":9091"},
               {"type": "route-finder", "listen": PUB + ":9092"},
               {"type": "service-discovery", "listen": PUB + ":9098"},
               {"type": "address-resolver", "listen": PUB + ":9093"},
               {"type": "stun-server", "listen": PUB + ":3478", "secondary_ip": PUB2,
                "alt_port": 3479, "health_listen": "127.0.0.1:9095"},
               {"type": "setup-node", "health_listen": "127.0.0.1:9094",
                "public_key": sn["public_key"], "secret_key": sn["secret_key"],
                "dmsg_discovery": dd, "transport_discovery": tpd}]}
    svc(net, pub, "skywire-svc", "run", "--config", net.config(dep))
    assert wait_until(lambda: net.http(pub, "GET", "http://127.0.0.1:9100/health")[0] == 200,
                      20), "the public services did not start"
    assert wait_until(lambda: net.http(pub, "GET", dd + "/dmsg-discovery/available_servers")[1]
                      not in ([], None, ""), 10)
    visors = {}
    sides["c"] = pub  # C is on the public network, no NAT
    for side, vis in sides.items():
        c = gen_visor_config()
        c["dmsg"]["discovery"] = dd
        c["transport_discovery"] = "http://%s:9091" % PUB
        c["address_resolver"] = "http://%s:9093" % PUB
        c["service_discovery"] = "http://%s:9098" % PUB
        c["stun_servers"] = [PUB + ":3478"]
        c["route_finder"] = "http://%s:9092" % PUB
        c["setup_nodes"] = [sn["public_key"]]
        c["api_listen"] = "127.0.0.1:8000" if side != "c" else "127.0.0.1:8001"
        c["stcpr_listen"] = "0.0.0.0:0" if side != "c" else PUB + ":0"
        p = net.start(vis, [os.path.join(BIN, "visor"), "run", "-c", net.config(c)],
                      "visor-" + side)
        visors[side] = (vis, c, p)
    return pub, visors


@require_root
class TestSudphNat(unittest.TestCase):
    def test_through_port_restricted_nats_with_loss(self):
        net = Net()
        try:
            pub, visors = build(net)
            (va, ca, _), (vb, cb, pb) = visors["a"], visors["b"]
            vc, cc, pc = visors["c"]

            def summary(ns):
                st, body = net.http(ns, "GET", API + "/api/summary")
                return body if st == 200 else None
            for ns in (va, vb):
                s = wait_until(lambda: (lambda x: x if x and x["sudph"]["bound"] and
                                        not x["nat"]["running"] and x["nat"]["checked"] and
                                        x["dmsg_servers"] else None)(summary(ns)), 30)
                self.assertIsNotNone(s, "visor did not bind sudph / find its NAT")
                self.assertEqual(s["nat_type"], "port-restricted-cone")
                self.assertTrue(s["sudph"]["public_addr"].startswith("198.18."), s["sudph"])
            st, t = net.http(va, "POST", API + "/api/transports",
                             {"remote_pk": cb["public_key"], "type": "sudph"}, timeout=20)
            self.assertEqual(st, 201, t)
            self.assertEqual((t["type"], t["state"]), ("sudph", "up"))
            tid = t["t_id"]
            st, body = net.http(va, "POST", API + "/api/transports/%s/ping" % tid)
            self.assertEqual(st, 200, body)
            st, body = net.http(vb, "POST", API + "/api/transports/%s/ping" % tid)
            self.assertEqual(st, 200, body)
            st, reg = net.http(pub, "GET", "http://%s:9091/transports/id:%s" % (PUB, tid))
            self.assertTrue(wait_until(lambda: net.http(
                pub, "GET", "http://%s:9091/transports/id:%s" % (PUB, tid))[0] == 200, 10))
            # 5 % of UDP datagrams between the NATs lost, both ways.
            sh("iptables", "-A", *LOSS, ns=pub)
            st, r = net.http(va, "POST", API + "/api/transports/%s/burst" % tid,
                             {"count": 10000, "size": 200}, timeout=125)
            self.assertEqual(st, 200, r)
            self.assertEqual((r["received"], r["in_order"]), (10000, True), r)
            drops = sh("iptables", "-L", "FORWARD", "-v", "-n", "-x", ns=pub).stdout
            lost = [int(line.split()[0]) for line in drops.splitlines()
                    if "statistic" in line][0]
            self.assertGreater(lost, 100, "the loss rule dropped almost nothing")
            st, m = net.http(va, "GET", API + "/metrics")
            rtx = [float(x.rsplit(" ", 1)[1]) for x in m.splitlines()
                   if x.startswith("visor_sudph_retransmits_total")]
            self.assertTrue(rtx and rtx[0] > 0, "no retransmissions counted")
            # A 2-hop route A -sudph- B -stcpr- C carries 100 chat messages in order.
            st, bc = net.http(vb, "POST", API + "/api/transports",
                              {"remote_pk": cc["public_key"], "type": "stcpr"}, timeout=20)
            self.assertEqual(st, 201, bc)
            self.assertTrue(wait_until(lambda: net.http(
                va, "GET", API + "/api/routes/find/%s?min_hops=2" % cc["public_key"])[0] == 200,
                20), "route-finder has no 2-hop route A -> C")
            tag = "m%d-" % int(time.time())
            sent = net.http_many(va, [("POST", API + "/api/chat",
                                       {"pk": cc["public_key"], "message": tag + str(i)})
                                      for i in range(100)])
            self.assertEqual([st for st, _ in sent if st not in (200, 201)], [], sent[:3])
            API_C = "http://127.0.0.1:8001"

            def received():
                st, ms = net.http(vc, "GET", API_C + "/api/chat")
                return [m["message"] for m in ms if m["direction"] == "received" and
                        m["pk"] == ca["public_key"] and m["message"].startswith(tag)] \
                    if st == 200 else []
            self.assertTrue(wait_until(lambda: len(received()) == 100, 20))
            self.assertEqual(received(), [tag + str(i) for i in range(100)])
            # Chats as large as the API's 64 KiB body allows (65000 bytes, two sudph fragments
            # each), still at 5 % loss, compared byte for byte: A -> C (A splits, B joins) and
            # C -> A on A's group (B splits, A joins).
            big = tag + "".join(chr(97 + (i * 7919) % 26) for i in range(65000 - len(tag)))
            st, body = net.http(va, "POST", API + "/api/chat",
                                {"pk": cc["public_key"], "message": big}, timeout=20)
            self.assertEqual(st, 200, body)
            self.assertTrue(wait_until(lambda: len(received()) == 101, 30))
            self.assertEqual(received()[100], big)
            st, body = net.http(vc, "POST", API_C + "/api/chat",
                                {"pk": ca["public_key"], "message": big[::-1]}, timeout=20)
            self.assertEqual(st, 200, body)

            def received_a():
                st, ms = net.http(va, "GET", API + "/api/chat")
                return [m["message"] for m in ms if m["direction"] == "received" and
                        m["pk"] == cc["public_key"]] if st == 200 else []
            self.assertTrue(wait_until(lambda: len(received_a()) == 1, 30))
            self.assertEqual(received_a(), [big[::-1]])
            # The largest message, 65498 bytes, to C's port 48 and echoed back, 20 times, one
            # in flight at a time with 2 s each: without the loss rule, as at 5 % loss per IP
            # packet a 32 KB datagram's 23 IP fragments mostly do not all get through in time.
            # Each is a Noise message of the group, so one wrong byte of reassembly fails its
            # tag and closes the group: an echo is a message carried intact, both ways.
            sh("iptables", "-D", *LOSS, ns=pub)
            st, png = net.http(va, "POST", API + "/api/ping",
                               {"pk": cc["public_key"], "min_hops": 2, "count": 20,
                                "size": 65498}, timeout=60)
            self.assertEqual(st, 200, png)
            self.assertEqual(png["path"][0]["t_id"], tid, png["path"])
            self.assertEqual((len(png["rtt_ms"]), png["lost"]), (20, 0), png)
            # 512 messages of 64 KiB as fast as A can send, 256 unacknowledged: four times
            # what sudph queues (4 MiB), so A waits for room on its first hop instead of
            # losing a message (a message lost after encryption would close the group at C).
            st, rb = net.http(va, "POST", API + "/api/route-bench",
                              {"pk": cc["public_key"], "min_hops": 2, "count": 512,
                               "size": 65498}, timeout=120)
            self.assertEqual(st, 200, rb)
            self.assertEqual(rb["messages"], 512, rb)
            self.assertEqual(rb["path"][0]["t_id"], tid, rb)
            self.assertGreater(rb["room_waits"], 0, rb)
            # The other way, C -stcpr- B -sudph- A: C queues at most 4 MiB for its first hop
            # and B, feeding sudph, holds what its queue cannot take and stops reading from C
            # (tests/visor/test_route.c shows the holding); B drops nothing.
            st, rb = net.http(vc, "POST", API_C + "/api/route-bench",
                              {"pk": ca["public_key"], "min_hops": 2, "count": 512,
                               "size": 65498}, timeout=120)
            self.assertEqual(st, 200, rb)
            self.assertEqual(rb["messages"], 512, rb)
            st, m = net.http(vb, "GET", API + "/metrics")
            self.assertNotIn('reason="egress_full"', m)
            self.assertNotIn('reason="send_failed"', m)

            def b_metric(name):
                st, m = net.http(vb, "GET", API + "/metrics")
                v = [float(x.rsplit(" ", 1)[1]) for x in m.splitlines() if x.startswith(name)]
                return v[0] if v else 0.0
            # A -sudph- B -stcpr- C, and C stops (SIGSTOP) in the middle of a stream: B's
            # egress to C fills, B holds the packet and stops delivering from sudph, so A's
            # packets wait unacknowledged in B's window and A's stream waits with them; when
            # C runs again the stream completes, nothing dropped at B.
            held0, fwd0, result = b_metric("router_held_total"), \
                b_metric("router_forwarded_total"), {}
            bench = threading.Thread(target=lambda: result.update(r=net.http(
                va, "POST", API + "/api/route-bench", {"pk": cc["public_key"], "min_hops": 2,
                                                       "count": 4096, "size": 65498},
                timeout=180)))
            bench.start()
            try:
                self.assertTrue(wait_until(lambda: b_metric("router_forwarded_total") >
                                           fwd0 + 100, 30), "the stream did not start")
                pc.send_signal(signal.SIGSTOP)
                self.assertTrue(wait_until(lambda: b_metric("router_held_total") > held0, 30),
                                "B held nothing for the stopped C")
            finally:
                pc.send_signal(signal.SIGCONT)
                bench.join(190)
            st, rb = result["r"]
            self.assertEqual(st, 200, rb)
            self.assertEqual(rb["messages"], 4096, rb)
            st, m = net.http(vb, "GET", API + "/metrics")
            self.assertNotIn('reason="egress_full"', m)
            self.assertNotIn('reason="send_failed"', m)
            for ns in (va, vb):
                st, m = net.http(ns, "GET", API + "/metrics")
                self.assertNotIn('reason="bad_fragment"', m)
            # B vanishes: A notices within the keep-alive limit.
            pb.send_signal(signal.SIGKILL)
            start = time.monotonic()
            gone = wait_until(lambda: all(x["t_id"] != tid for x in
                                          net.http(va, "GET", API + "/api/transports")[1]), 40,
                              step=0.5)
            self.assertTrue(gone, "A did not notice B vanish")
            self.assertLess(time.monotonic() - start, 36)
        finally:
            net.close()


if __name__ == "__main__":
    unittest.main()

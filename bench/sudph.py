"""bench/sudph: sudph against stcpr between two visors on loopback, in the
same run: a windowed PING flood (POST /api/transports/{t_id}/burst, 16 KiB
packets, their PONGs back) over each, bytes both ways per second.  Target:
sudph >= 50 % of stcpr.  Then the same over sudph with 5 % of its datagrams
dropped at random (iptables statistic on lo, root only), against sudph
without loss."""

import os
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "tests", "py"))
sys.path.insert(0, os.path.join(here, "..", "tests", "visor"))
from swclient import request, wait_until  # noqa: E402
import test_transports as tt  # noqa: E402

COUNT = int(os.environ.get("BENCH_SUDPH_COUNT", "20000"))
SIZE = 16384


class Env:
    pass


def burst(v, tid, count=COUNT):
    r = request("POST", v.api + "/api/transports/%s/burst" % tid,
                {"count": count, "size": SIZE, "window": 256}, timeout=130)
    assert r.status == 200, r.body
    b = r.json()
    assert b["received"] == count and b["in_order"], b
    return b["bytes_per_s"] / 1e6


def loss_rule(op, ports):
    for p in ports:
        subprocess.run(["iptables", op, "INPUT", "-i", "lo", "-p", "udp", "--dport", str(p),
                        "-m", "statistic", "--mode", "random", "--probability", "0.05",
                        "-j", "DROP"], check=True, capture_output=True)


def main():
    holder = type("Bench", (), {})
    tt.TestTransports.setUpClass.__func__(holder)
    a, b = holder.a, holder.b
    try:
        for v in (a, b):
            assert wait_until(lambda: request("GET", v.api + "/api/summary").json()
                              ["sudph"]["bound"], 10)
        tids = {}
        for typ in ("stcpr", "sudph"):
            r = a.add(b.pk, typ)
            assert r.status == 201, r.body
            tids[typ] = r.json()["t_id"]
        burst(a, tids["sudph"], 1000)  # warm-up: RTT estimate, allocator
        stcpr = burst(a, tids["stcpr"])
        sudph = burst(a, tids["sudph"])
        print("stcpr             %8.1f MB/s" % stcpr)
        print("sudph             %8.1f MB/s" % sudph)
        print("ratio sudph / stcpr = %.0f%% (target >= 50%%)" % (100 * sudph / stcpr))
        if os.geteuid() != 0:
            print("*** SKIPPED sudph at 5 %% loss: iptables needs root ***")
            return
        ports = [request("GET", v.api + "/api/summary").json()["sudph"]["port"]
                 for v in (a, b)]
        loss_rule("-A", ports)
        try:
            lossy = burst(a, tids["sudph"])
        finally:
            loss_rule("-D", ports)
        print("sudph at 5%% loss  %8.1f MB/s" % lossy)
        print("ratio sudph at 5%% loss / sudph = %.0f%%" % (100 * lossy / sudph))
    finally:
        tt.TestTransports.tearDownClass.__func__(holder)


if __name__ == "__main__":
    main()

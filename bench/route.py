#!/usr/bin/python3
"""bench/route: the measuring half of bench/route.sh.

gen CFG PORTS...   write a deployment (split processes, redis store) with visors
                   A, B, C, D and setup-node on the given free ports
run CFG            open stcpr A-B, B-C, C-D, A-C and measure:
  - a stream of 64 KiB messages A -> C over the direct transport (1 hop) and
    through B (2 hops): MB/s, messages/s, the ratio (target >= 70 %), and
    B's CPU seconds per GB forwarded;
  - route setup latency (request to group up: route-finder, setup-node, the
    handshake), p50/p99 over 200 setups of 1 hop (A -> C) and 3 hops
    (A -> B -> C -> D), one started every BENCH_ROUTE_PERIOD_MS (50: each
    meets a machine done with the last one's teardown and refills, as a
    user's setup does); target p50 < 5 ms on loopback.  Then the same back
    to back (each the moment the last is answered): latency under a
    sustained stream of setups from one visor, and setups/s;
  - idle memory per intermediary rule on B: its RSS before and after
    route-rules installs BENCH_ROUTE_RULES rules over port 136 (a second key
    in setup_nodes); target < 128 bytes.
"""
import json
import os
import subprocess
import sys
import time
import urllib.request

COUNT = int(os.environ.get("BENCH_ROUTE_MESSAGES", "3200"))
SETUPS = int(os.environ.get("BENCH_ROUTE_SETUPS", "200"))
PERIOD = int(os.environ.get("BENCH_ROUTE_PERIOD_MS", "50")) / 1000.0
SIZE = 65498


def call(method, url, body=None, timeout=120):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def wait(pred, secs, what):
    end = time.time() + secs
    while time.time() < end:
        try:
            if pred():
                return
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit("bench/route: timed out waiting for " + what)


def gen(cfg, ports):
    p = [int(x) for x in ports]
    keys = {}
    for name in ("setup-node", "A", "B", "C", "D", "dmsg-server", "bench", "tpd"):
        out = subprocess.run([os.path.join(os.environ.get("SW_BUILD", "build"), "bin", "visor"),
                              "gen-config"], capture_output=True, text=True, check=True)
        k = json.loads(out.stdout)
        keys[name] = (k["public_key"], k["secret_key"])
    dd, ds, ds_h, tpd, rf, ar, sn, va, vb, vc, vd, redis = p
    u = lambda port: "http://127.0.0.1:%d" % port  # noqa: E731
    svcs = [
        {"type": "dmsg-discovery", "listen": "127.0.0.1:%d" % dd},
        {"type": "dmsg-server", "listen": "127.0.0.1:%d" % ds,
         "health_listen": "127.0.0.1:%d" % ds_h, "discovery": u(dd),
         "public_key": keys["dmsg-server"][0], "secret_key": keys["dmsg-server"][1]},
        {"type": "transport-discovery", "listen": "127.0.0.1:%d" % tpd,
         "public_key": keys["tpd"][0], "secret_key": keys["tpd"][1], "dmsg_discovery": u(dd)},
        {"type": "route-finder", "listen": "127.0.0.1:%d" % rf},
        {"type": "address-resolver", "listen": "127.0.0.1:%d" % ar},
        {"type": "setup-node", "health_listen": "127.0.0.1:%d" % sn,
         "public_key": keys["setup-node"][0], "secret_key": keys["setup-node"][1],
         "dmsg_discovery": u(dd), "transport_discovery": u(tpd),
         "transport_discovery_pk": keys["tpd"][0]},
    ]
    for name, port in (("A", va), ("B", vb), ("C", vc), ("D", vd)):
        svcs.append({"type": "visor", "name": name, "public_key": keys[name][0],
                     "secret_key": keys[name][1],
                     "dmsg": {"discovery": u(dd), "min_sessions": 1},
                     "transport_discovery": u(tpd), "address_resolver": u(ar),
                     "route_finder": u(rf), "service_discovery": "http://127.0.0.1:9",
                     "setup_nodes": [keys["setup-node"][0], keys["bench"][0]],
                     "api_listen": "127.0.0.1:%d" % port})
    open(cfg + ".bench", "w").write("%s %s\n" % (u(dd), keys["bench"][1]))
    json.dump({"log": {"level": "warn", "format": "text"},
               "store": {"redis": "redis://127.0.0.1:%d/0" % redis},
               "services": svcs}, open(cfg, "w"))
    for s in svcs:
        name = s.get("name", s["type"])
        addr = s.get("health_listen") or s.get("api_listen") or s.get("listen")
        path = "/api/pk" if s["type"] == "visor" else "/health"
        print(s["type"], name, "http://%s%s" % (addr, path))


def cpu_s(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def rss(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def setups(api, pk, every, hops, dst, paced):
    """SETUPS pings of one message from A to dst over hops hops: setup_ms of each."""
    lat = []
    c0 = sum(cpu_s(x) for x in every)
    c1 = {x: cpu_s(x) for x in every}
    t0 = time.monotonic()
    for i in range(SETUPS):
        if paced:
            ahead = t0 + i * PERIOD - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        st, r = call("POST", api["A"] + "/api/ping",
                     {"pk": pk[dst], "min_hops": hops, "count": 1, "size": 8})
        if st != 200 or len(r["path"]) != hops:
            sys.exit("bench/route: ping over %d hops: %s" % (hops, r))
        lat.append(r["setup_ms"])
    wall = time.monotonic() - t0
    cpu_ms = 1000 * (sum(cpu_s(x) for x in every) - c0) / SETUPS
    if os.environ.get("BENCH_ROUTE_CPU_BY"):
        print(" ".join("%s=%.2f" % (open("/proc/%d/cmdline" % x).read().split("\0")[-2],
                                     1000 * (cpu_s(x) - c1[x]) / SETUPS) for x in every))
    hs = "%d hop%s" % (hops, "" if hops == 1 else "s")
    if paced:
        how = "one every %.0f ms" % (PERIOD * 1000)
        print("route setup %s (%s): p50 %.1f ms, p99 %.1f ms over %d (target p50 < 5 ms); "
              "%.1f CPU ms per setup over every process" %
              (hs, how, pct(lat, 0.5), pct(lat, 0.99), SETUPS, cpu_ms))
        print("SUMMARY|route setup %s, p50 of %d (%s)|%.1f|ms|p99 %.1f ms, %.1f CPU ms per "
              "setup|-|< 5 ms" % (hs, SETUPS, how, pct(lat, 0.5), pct(lat, 0.99), cpu_ms))
    else:
        print("route setup %s (back to back): p50 %.1f ms, p99 %.1f ms, %.0f setups/s; "
              "%.1f CPU ms per setup" % (hs, pct(lat, 0.5), pct(lat, 0.99), SETUPS / wall,
                                         cpu_ms))
        print("SUMMARY|route setup %s back to back, p50 of %d|%.1f|ms|p99 %.1f ms, %.0f "
              "setups/s|-|-" % (hs, SETUPS, pct(lat, 0.5), pct(lat, 0.99), SETUPS / wall))


def run(cfg, pids, rules_bin):
    d = json.load(open(cfg))
    api = {s["name"]: "http://" + s["api_listen"] for s in d["services"] if s["type"] == "visor"}
    pid = dict(x.split("=") for x in pids.split(","))
    pk = {}
    for n, a in api.items():
        wait(lambda: call("GET", a + "/api/summary")[1]["dmsg_servers"] != [], 30,
             n + "'s dmsg session")
        pk[n] = call("GET", a + "/api/pk")[1]["pk"]
    for a, b in (("A", "B"), ("B", "C"), ("C", "D"), ("A", "C")):
        st, t = call("POST", api[a] + "/api/transports", {"remote_pk": pk[b], "type": "stcpr"})
        if st not in (200, 201):
            sys.exit("bench/route: transport %s-%s: %s" % (a, b, t))
    wait(lambda: call("GET", api["A"] + "/api/routes/find/" + pk["D"] +
                      "?min_hops=3")[0] == 200, 20, "route-finder's 3-hop route")

    res = {}
    for hops in (1, 2):
        c0 = cpu_s(int(pid["B"]))
        st, r = call("POST", api["A"] + "/api/route-bench",
                     {"pk": pk["C"], "min_hops": hops, "count": COUNT, "size": SIZE}, 600)
        if st != 200:
            sys.exit("bench/route: stream over %d hops: %s" % (hops, r))
        cpu = cpu_s(int(pid["B"])) - c0
        assert len(r["path"]) == hops, r["path"]
        mbs = r["bytes"] / 1e6 / (r["ms"] / 1000.0)
        res[hops] = (mbs, r["messages"] / (r["ms"] / 1000.0), cpu, r["bytes"])
        print("route %d hop%s: %.0f MB/s, %.0f msg/s (%d x %d B)" %
              (hops, "" if hops == 1 else "s", mbs, res[hops][1], COUNT, SIZE))
    print("route 2-hop / direct: %.0f %% (target >= 70 %%)" % (100 * res[2][0] / res[1][0]))
    print("intermediary B: %.2f CPU s per GB forwarded" % (res[2][2] / (res[2][3] / 1e9)))
    print("SUMMARY|route stream, 2 hops (64 KiB messages)|%.0f|MB/s|direct A-C %.0f MB/s|"
          "%.0f%%|>= 70%%" % (res[2][0], res[1][0], 100 * res[2][0] / res[1][0]))
    print("SUMMARY|route intermediary B CPU per GB forwarded|%.2f|CPU-s/GB|-|-|-" %
          (res[2][2] / (res[2][3] / 1e9)))

    every = [int(x) for x in os.environ.get("ROUTE_PIDS", "").split()]
    for hops, dst in ((1, "C"), (3, "D")):
        for paced in (True, False):
            setups(api, pk, every, hops, dst, paced)

    disc, seed = open(cfg + ".bench").read().split()
    tps = {t["remote_pk"]: t["t_id"] for t in call("GET", api["B"] + "/api/transports")[1]}
    n = int(os.environ.get("BENCH_ROUTE_RULES", "50000"))
    before = rss(int(pid["B"]))
    r = subprocess.run([rules_bin, disc, seed, pk["B"], tps[pk["A"]], tps[pk["C"]], str(n)],
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        sys.exit("bench/route: route-rules exited %d: %s %s" % (r.returncode, r.stdout, r.stderr))
    after = rss(int(pid["B"]))
    print("intermediary B: %.0f bytes of RSS per idle rule over %d rules (target < 128)" %
          ((after - before) / n, n))
    print("SUMMARY|route idle memory per intermediary rule (%d)|%.0f|bytes|-|-|< 128 bytes" %
          (n, (after - before) / n))


if __name__ == "__main__":
    if sys.argv[1] == "gen":
        gen(sys.argv[2], sys.argv[3:])
    else:
        run(sys.argv[2], sys.argv[3], sys.argv[4])

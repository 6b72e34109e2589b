#!/usr/bin/python3
"""Three visors of the deployment open transports of both types with
skywire-cli (tp add), see them registered in transport-discovery under the
derived t_id, ping over each, list them (tp ls) on both ends, find each other's
published services in service-discovery and through the CLI (visor pv,
vpn-servers), then remove the transports (tp rm) and see them deregistered."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "py"))
from swclient import request, wait_until  # noqa: E402

TPD = os.environ.get("E2E_TPD", "http://127.0.0.1:9091")
SD = os.environ.get("E2E_SD", "http://127.0.0.1:9098")
VISORS = os.environ.get("E2E_VISORS3", "http://127.0.0.1:8000,http://127.0.0.1:8001,"
                        "http://127.0.0.1:8002").split(",")
BIN = os.path.join(os.environ.get("SW_BUILD", "build"), "bin")


def check(cond, what):
    if not cond:
        sys.exit("FAIL: " + what)
    print("ok:", what)


def cli(api, *args):
    return subprocess.run([os.path.join(BIN, "skywire-cli"), "--api", api] + list(args),
                          capture_output=True, text=True, timeout=30)


def tps(api):
    r = cli(api, "--json", "tp", "ls")
    return json.loads(r.stdout) if r.returncode == 0 else []


def edge(pk):
    return request("GET", TPD + "/transports/edge:" + pk).json()


pks = []
for api in VISORS:
    pk = cli(api, "visor", "pk").stdout.strip()
    check(len(pk) == 64, "skywire-cli visor pk answers for " + api)
    check(wait_until(lambda: "dmsg servers   1" in cli(api, "visor", "info").stdout, 20),
          "visor %s holds a dmsg session" % pk[:8])
    pks.append(pk)

# One of each type on some pairs, so both carriers and both directions are used.
plan = [(0, 1, "dmsg"), (1, 2, "stcpr"), (2, 0, "dmsg"), (0, 2, "stcpr")]
opened = []
for i, j, typ in plan:
    r = cli(VISORS[i], "--json", "tp", "add", pks[j], "--type", typ)
    check(r.returncode == 0, "visor-%d opens a %s transport to visor-%d: %s" %
          (i + 1, typ, j + 1, r.stderr.strip()))
    t = json.loads(r.stdout)
    check(t["state"] == "up" and t["type"] == typ and t["remote_pk"] == pks[j],
          "the transport is up: " + t["t_id"])
    opened.append((i, j, typ, t["t_id"]))

for i, j, typ, tid in opened:
    check(wait_until(lambda: any(e["t_id"] == tid and e["type"] == typ and
                                 sorted(e["edges"]) == sorted([pks[i], pks[j]])
                                 for e in edge(pks[j])), 15),
          "%s transport %s is in transport-discovery" % (typ, tid[:8]))
    check(wait_until(lambda: any(t["t_id"] == tid for t in tps(VISORS[j])), 10),
          "the peer visor-%d lists %s" % (j + 1, tid[:8]))
    for k in (i, j):
        r = cli(VISORS[k], "tp", "ping", tid)
        check(r.returncode == 0 and "rtt" in r.stdout,
              "visor-%d pings over %s: %s" % (k + 1, tid[:8], (r.stdout + r.stderr).strip()))
    r = cli(VISORS[i], "tp", "ls")
    check(r.returncode == 0 and tid in r.stdout and pks[j] in r.stdout,
          "tp ls on visor-%d shows %s" % (i + 1, tid[:8]))

info = json.loads(cli(VISORS[0], "--json", "visor", "info").stdout)
check(len(info["transports"]) >= 3, "visor info counts visor-1's transports")

# Published services: every visor as "visor", visor-1 as vpn, visor-3 as skysocks.
check(wait_until(lambda: {p + ":0" for p in pks} <=
                 {s["address"] for s in request("GET", SD + "/api/services?type=visor").json()},
                 20), "service-discovery lists the three visors")
check(any(s["address"] == pks[0] + ":44"
          for s in request("GET", SD + "/api/services?type=vpn").json()),
      "visor-1's vpn service is published")
check(any(s["address"] == pks[2] + ":3"
          for s in request("GET", SD + "/api/services?type=skysocks").json()),
      "visor-3's skysocks service is published")
check(wait_until(lambda: all(p in cli(VISORS[1], "visor", "pv").stdout for p in pks), 20),
      "skywire-cli visor pv lists the three visors")
check(wait_until(lambda: pks[0] in cli(VISORS[2], "visor", "vpn-servers").stdout, 20),
      "skywire-cli visor vpn-servers lists visor-1")

# Removal deregisters, and the peer drops its end.
for i, j, typ, tid in opened:
    r = cli(VISORS[i], "tp", "rm", tid)
    check(r.returncode == 0, "visor-%d removes %s" % (i + 1, tid[:8]))
    check(wait_until(lambda: request("GET", TPD + "/transports/id:" + tid).status == 404, 10),
          "%s left transport-discovery" % tid[:8])
    check(wait_until(lambda: all(t["t_id"] != tid for t in tps(VISORS[j])), 10),
          "visor-%d dropped %s" % (j + 1, tid[:8]))

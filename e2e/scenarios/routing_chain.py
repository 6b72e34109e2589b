#!/usr/bin/python3
"""Three visors A, B, C with stcpr transports A-B and B-C only: A pings C over
two hops through setup-node (the answer shows the path A->B->C), sends C 100
chat messages that arrive in order, B holds exactly two intermediary rules
with no endpoint in them, and closing B-C closes the route group at both
ends, removes B's rules and leaves A no 2-hop path to C."""
import json
import os
import subprocess
import sys
import time

here = os.path.dirname(__file__)
sys.path.insert(0, os.path.join(here, "..", "..", "tests", "py"))
from swclient import request, wait_until  # noqa: E402

VISORS = os.environ.get("E2E_VISORS3", "http://127.0.0.1:8000,http://127.0.0.1:8001,"
                        "http://127.0.0.1:8002").split(",")
BIN = os.path.join(os.environ.get("SW_BUILD", "build"), "bin")
A, B, C = VISORS


def check(cond, what):
    if not cond:
        sys.exit("FAIL: " + what)
    print("ok:", what)


def cli(api, *args, timeout=60):
    return subprocess.run([os.path.join(BIN, "skywire-cli"), "--api", api] + list(args),
                          capture_output=True, text=True, timeout=timeout)


def cli_json(api, *args):
    r = cli(api, "--json", *args)
    return r, (json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else None)


def pk(api):
    return request("GET", api + "/api/pk").json()["pk"]


def groups(api, peer):
    gs = request("GET", api + "/api/route-groups").json()
    return [g for g in gs if peer in (g["desc"]["src_pk"], g["desc"]["dst_pk"])]


pa, pb, pc = pk(A), pk(B), pk(C)
r, ab = cli_json(A, "tp", "add", pb, "--type", "stcpr")
check(ab is not None and ab["state"] == "up", "A opens stcpr A-B: " + r.stderr)
r, bc = cli_json(B, "tp", "add", pc, "--type", "stcpr")
check(bc is not None and bc["state"] == "up", "B opens stcpr B-C: " + r.stderr)
check(wait_until(lambda: request("GET", A + "/api/routes/find/" + pc +
                                 "?min_hops=2").status == 200, 20),
      "route-finder sees a 2-hop route A -> C")

r, ping = cli_json(A, "visor", "ping", pc, "--hops", "2", "--count", "3")
check(ping is not None, "visor ping C --hops 2 answers: " + r.stderr)
check([(h["from"], h["to"], h["t_id"]) for h in ping["path"]] ==
      [(pa, pb, ab["t_id"]), (pb, pc, bc["t_id"])], "the ping went A -> B -> C")
check(len(ping["rtt_ms"]) == 3 and ping["lost"] == 0, "three round trips, none lost")
r = cli(A, "visor", "ping", pc, "--hops", "2", "--count", "1")
check(r.returncode == 0 and "rtt" in r.stdout and "2 hops" in r.stdout,
      "the table form shows the round trip and the 2 hops")

tag = "m%d-" % int(time.time() * 1000)
for i in range(100):
    r = cli(A, "chat", "send", pc, tag + str(i))
    if r.returncode != 0:
        check(False, "chat message %d sent: %s" % (i, r.stderr))
check(True, "100 chat messages sent from A")


def received():
    ms = request("GET", C + "/api/chat").json()
    return [m["message"] for m in ms if m["direction"] == "received" and m["pk"] == pa and
            m["message"].startswith(tag)]


check(wait_until(lambda: len(received()) == 100, 10), "C received all 100")
check(received() == [tag + str(i) for i in range(100)], "in the order they were sent")

# The largest message a route group carries, through the same API (its JSON is
# over the HTTP server's default 64 KiB body limit).
big = (tag + "big-" + "x0123456789" * 6000)[:65498]
r = request("POST", A + "/api/chat", {"pk": pc, "message": big})
check(r.status == 200, "a 65498-byte chat message is taken: %d %s" % (r.status, r.body[:200]))
check(wait_until(lambda: big in received(), 10), "and arrives whole at C")
r = request("POST", A + "/api/chat", {"pk": pc, "message": big + "y"})
check(r.status == 422, "one byte more is refused (422): %d" % r.status)

r, rules = cli_json(B, "route", "ls")
mine = [x for x in rules if ab["t_id"] in (x.get("t_id"), x.get("next_tp_id"))]
check(len(mine) == 2 and all(x["type"] == "intermediary" for x in mine),
      "route ls on B shows two intermediary rules for the chat group")
check(all("desc" not in x for x in mine), "B's rules name no endpoint (no desc)")
check({(x["t_id"], x["next_tp_id"]) for x in mine} ==
      {(ab["t_id"], bc["t_id"]), (bc["t_id"], ab["t_id"])}, "one rule each way through B")
check(len(groups(A, pc)) == 1 and len(groups(C, pa)) == 1, "A and C each hold the group")
r, info = cli_json(B, "visor", "info")
check(info is not None and len(info["routes"]) >= 2, "visor info on B shows its routes")
r = cli(A, "route", "find", pc, "--hops", "2")
check(r.returncode == 0 and "path 1 (2 hops)" in r.stdout and ab["t_id"] in r.stdout,
      "route find C --hops 2 prints the path through B")

r = cli(B, "tp", "rm", bc["t_id"])
check(r.returncode == 0, "B closes B-C")
check(wait_until(lambda: groups(A, pc) == [] and groups(C, pa) == [], 10),
      "the route group closed at A and at C")
check(wait_until(lambda: not [x for x in request("GET", B + "/api/routes").json()
                              if ab["t_id"] in (x.get("t_id"), x.get("next_tp_id"))], 10),
      "B's rules are gone")
check(wait_until(lambda: cli(A, "visor", "ping", pc, "--hops", "2").returncode != 0 and
                 "no route" in cli(A, "visor", "ping", pc, "--hops", "2").stderr, 20),
      "a new ping over 2 hops finds no route")
check(cli(A, "tp", "rm", ab["t_id"]).returncode == 0, "A closes A-B (clean up)")

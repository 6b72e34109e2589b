#!/usr/bin/python3
"""Three visors register the transports between them in the running
deployment's transport-discovery; route-finder, reading the same store,
finds the route across them, and forgets it when a visor deletes its
transport."""
import os
import sys

here = os.path.dirname(__file__)
sys.path.insert(0, os.path.join(here, "..", "..", "tests", "py"))
sys.path.insert(0, os.path.join(here, "..", "..", "tests", "transport-discovery"))
from swclient import Key, auth_request, request, wait_until  # noqa: E402
from tpclient import entry  # noqa: E402

TD = os.environ.get("E2E_TD", "http://127.0.0.1:9091")
RF = os.environ.get("E2E_RF", "http://127.0.0.1:9092")
HEALTH = os.environ.get("E2E_HEALTH", "http://127.0.0.1:9100")


def check(cond, what):
    if not cond:
        sys.exit("FAIL: " + what)
    print("ok:", what)


def routes(src, dst):
    return request("POST", RF + "/routes", {"edges": [[src.pk, dst.pk]],
                                            "opts": {"max_hops": 5}})


a, b, c = Key(), Key(), Key()
ab, bc = entry(a, b, "dmsg"), entry(b, c, "stcpr")
r = auth_request(TD, "POST", "/transports/", a, [ab])
check(r.status == 201 and r.json()[0]["t_id"] == ab["t_id"], "a registers a-b")
check(auth_request(TD, "POST", "/transports/", c, [bc]).status == 201, "c registers b-c")
check(request("GET", TD + "/transports/id:" + bc["t_id"]).json()["edges"] == bc["edges"],
      "b-c is found by its id")
mine = sorted(e["t_id"] for e in request("GET", TD + "/transports/edge:" + b.pk).json())
check(mine == sorted([ab["t_id"], bc["t_id"]]), "b's transports are found by its key")
alls = {e["t_id"] for e in request("GET", TD + "/all-transports").json()}
check({ab["t_id"], bc["t_id"]} <= alls, "both are among all transports")

key = a.pk + ":" + c.pk
check(wait_until(lambda: routes(a, c).status == 200, 10), "route-finder sees the new transports")
paths = routes(a, c).json()[key]
check(len(paths) == 1 and [h["t_id"] for h in paths[0]] == [ab["t_id"], bc["t_id"]],
      "the route a -> b -> c uses both transports")
check([(h["from"], h["to"]) for h in paths[0]] == [(a.pk, b.pk), (b.pk, c.pk)],
      "each hop names its ends in the route's direction")

check(auth_request(TD, "DELETE", "/transports/id:" + bc["t_id"], Key()).status == 403,
      "a stranger may not delete b-c")
check(auth_request(TD, "DELETE", "/transports/id:" + bc["t_id"], b).status == 200,
      "b deletes b-c")
check(wait_until(lambda: routes(a, c).status == 404, 10),
      "route-finder forgets the deleted transport")
check(auth_request(TD, "DELETE", "/transports/id:" + ab["t_id"], b).status == 200,
      "b deletes a-b")

if os.environ.get("E2E_MODE") == "split":
    sys.exit(0)  # no shared mux when every service runs alone
names = {x["service"] for x in request("GET", HEALTH + "/health").json()["services"]}
check({"transport-discovery", "route-finder"} <= names,
      "shared /health lists transport-discovery and route-finder")

#!/usr/bin/python3
"""An operator whose key transport-setup trusts adds a dmsg, an stcpr and a sudph
transport from visor-1 to visor-2 through transport-setup's HTTP API, sees
them in the live list with label skycoin, and removes them; a stranger gets
403; visor-3 (which does not list transport-setup's key) closes the stream:
502 naming it; an unknown visor is a 502; from == to is a 422."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "py"))
from swclient import Key, auth_request, request, wait_until  # noqa: E402

CONFIG = os.environ.get("E2E_CONFIG", "compose/deployment.json")
DD = os.environ.get("E2E_DD", "http://127.0.0.1:9090")
# The operator key compose/deployment*.json's transport-setup trusts (test key only).
OP = Key(bytes.fromhex("b3002b6a605dbf7604c9a6694f1b835d52e99606d9d43931f9d288b22a452b78"))


def check(cond, what, resp=None):
    if not cond:
        sys.exit("FAIL: " + what + ("" if resp is None else " (%d %s)" % (resp.status,
                                                                          resp.body[:300])))
    print("ok:", what)


insts = json.load(open(CONFIG))["services"]
ts = [i for i in insts if i["type"] == "transport-setup"][0]
TS = os.environ.get("E2E_TS") or "http://" + ts["listen"]  # compose: by name
v = {i["name"]: i for i in insts if i["type"] == "visor"}
v1, v2, v3 = v["visor-1"], v["visor-2"], v["visor-3"]
check(wait_until(lambda: request("GET", TS + "/health").status == 200 and
                 request("GET", TS + "/health").json()["checks"].get("dmsg") == "ok", 30),
      "transport-setup is up with a dmsg session")


def dialable(pk):
    r = request("GET", DD + "/dmsg-discovery/entry/" + pk)
    return r.status == 200 and r.json().get("client", {}).get("delegated_servers")


check(wait_until(lambda: all(dialable(x["public_key"]) for x in (v1, v2, v3)), 30),
      "the visors are in dmsg-discovery with a server")


def call(method, path, body=b"", key=OP):
    return auth_request(TS, method, path, key, body)


for typ in ("dmsg", "stcpr", "sudph"):
    r = call("POST", "/add", {"from": v1["public_key"], "to": v2["public_key"], "type": typ})
    check(r.status == 200 and r.json()["label"] == "skycoin" and r.json()["type"] == typ,
          "%s transport added through transport-setup (label skycoin)" % typ, r)
    tid = r.json()["t_id"]
    r = call("GET", "/%s/transports" % v1["public_key"])
    check(r.status == 200 and any(x["t_id"] == tid and x["label"] == "skycoin"
                                  for x in r.json()), "%s transport listed live" % typ)
    local = request("GET", "http://%s/api/transports" % v1["api_listen"]).json()
    check(any(x["t_id"] == tid for x in local), "visor-1's own API lists it")
    r = call("POST", "/remove", {"from": v1["public_key"], "t_id": tid})
    check(r.status == 200 and r.json() == {"removed": True}, "%s transport removed" % typ)
    r = call("POST", "/remove", {"from": v1["public_key"], "t_id": tid})
    check(r.status == 404, "removing it again is 404")

r = call("POST", "/add", {"from": v1["public_key"], "to": v2["public_key"], "type": "dmsg"},
         key=Key())
check(r.status == 403, "an untrusted caller gets 403")
r = call("POST", "/add", {"from": v3["public_key"], "to": v1["public_key"], "type": "dmsg"})
check(r.status == 502 and "transport_setup_pks" in r.json()["error"],
      "a visor without transport-setup's key closes the stream: 502 naming it")
start = time.monotonic()
r = call("POST", "/add", {"from": Key().pk, "to": v1["public_key"], "type": "dmsg"})
check(r.status == 502 and time.monotonic() - start < 15.5, "an unknown visor is a 502 in time")
r = call("POST", "/add", {"from": v1["public_key"], "to": v1["public_key"], "type": "dmsg"})
check(r.status == 422, "from == to is 422")

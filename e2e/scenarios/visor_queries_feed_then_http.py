#!/usr/bin/python3
"""A visor asks for the clients of the deployment's dmsg server: once its
subscription to dmsg-discovery's clients-by-server feed (over dmsg, port 46)
has a snapshot the answer comes from the feed ("source":"cxo"), with the
same clients dmsg-discovery's HTTP API lists; asked of a publisher nobody
can reach (the API's diagnostic ?publisher=PK), the visor answers from HTTP
("source":"http") and says why; the configured feed keeps answering.

Why ?publisher and not a stopped process: the publisher of clients-by-server
is dmsg-discovery itself, which every visor needs, in both modes; a key no
process holds is exactly what an unreachable publisher looks like to the
visor (the dial finds no entry), without breaking the deployment."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "py"))
from swclient import request, wait_until  # noqa: E402

DD = os.environ.get("E2E_DD", "http://127.0.0.1:9090")
VISORS = os.environ.get("E2E_VISORS", "http://127.0.0.1:8000,http://127.0.0.1:8001").split(",")
CONFIG = os.environ.get("E2E_CONFIG", "compose/deployment.json")


def check(cond, what):
    if not cond:
        sys.exit("FAIL: " + what)
    print("ok:", what)


services = json.load(open(CONFIG))["services"]
server_pk = [s for s in services if s["type"] == "dmsg-server"][0]["public_key"]
visor_pks = {s["public_key"] for s in services if s["type"] == "visor"}
dd_pk = [s for s in services if s["type"] == "dmsg-discovery"][0]["public_key"]
api = VISORS[0]
path = api + "/api/dmsg/clients-by-server/" + server_pk


def clients(url):
    r = request("GET", url)
    if r.status != 200:
        return None, None
    j = r.json()
    return j, {c["static"] for c in j.get("clients", [])}


# Both visors must be in the index before the feed can show them.
check(wait_until(lambda: visor_pks <= {c["static"] for c in request(
    "GET", DD + "/dmsg-discovery/clients-by-server/" + server_pk).json()}, 30),
    "dmsg-discovery lists both visors under the server")

last = {}


def from_feed():
    j, pks = clients(path)
    last["j"], last["pks"] = j, pks
    return j is not None and j["source"] == "cxo" and visor_pks <= pks


check(wait_until(from_feed, 30, 0.2), "the visor answers from the feed (source cxo)")
j = last["j"]
check(j["feed"]["publisher"] == dd_pk and j["feed"]["port"] == 46 and j["feed"]["connected"],
      "the answer names dmsg-discovery's feed on port 46, connected")
http_pks = {c["static"] for c in request(
    "GET", DD + "/dmsg-discovery/clients-by-server/" + server_pk).json()}
check(last["pks"] == http_pks, "the feed lists the same clients as dmsg-discovery's HTTP API")

nobody = os.urandom(32).hex()
for i in range(3):
    j, pks = clients(path + "?publisher=" + nobody)
    check(j is not None and j["source"] == "http" and visor_pks <= pks,
          "with the publisher unreachable the visor answers from HTTP (try %d)" % (i + 1))
    check(j["feed"]["publisher"] == nobody and not j["feed"]["connected"],
          "the answer says the feed is not connected")
check(wait_until(lambda: "last_error" in clients(path + "?publisher=" + nobody)[0]["feed"], 30,
                 0.2), "and why (the feed's last error)")
j, pks = clients(path)
check(j["source"] == "cxo", "the configured feed still answers")
r = request("GET", path + "?publisher=xyz")
check(r.status == 400, "a malformed publisher is refused")
r = request("GET", api + "/api/services/visor")
check(r.status == 200 and r.json()["source"] in ("cxo", "http"),
      "services by type answer with their source")

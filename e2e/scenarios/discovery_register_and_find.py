#!/usr/bin/python3
"""A server and two clients register in the running deployment's
dmsg-discovery; a visor-like reader finds the server among the available
ones and the clients by server; the shared /health, /metrics and
/debug/services of the supervisor tell the truth."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "py"))
from swclient import Key, auth_request, client_entry, request, server_entry  # noqa: E402

DD = os.environ.get("E2E_DD", "http://127.0.0.1:9090")
HEALTH = os.environ.get("E2E_HEALTH", "http://127.0.0.1:9100")


def check(cond, what):
    if not cond:
        sys.exit("FAIL: " + what)
    print("ok:", what)


s, c1, c2 = Key(), Key(), Key()
check(request("POST", DD + "/dmsg-discovery/entry/",
              server_entry(s, 0, "127.0.0.1:18080", 100)).status == 200, "server registers")
for c in (c1, c2):
    check(request("POST", DD + "/dmsg-discovery/entry/",
                  client_entry(c, 0, [s.pk])).status == 200, "client registers")
avail = [e["static"] for e in request("GET", DD + "/dmsg-discovery/available_servers").json()]
check(s.pk in avail, "server is available")
clients = sorted(e["static"] for e in
                 request("GET", DD + "/dmsg-discovery/clients-by-server/" + s.pk).json())
check(clients == sorted([c1.pk, c2.pk]), "clients found by their server")
check(auth_request(DD, "DELETE", "/dmsg-discovery/entry/" + c1.pk, c1).status == 200,
      "a client deletes itself with httpauth")
clients = [e["static"] for e in
           request("GET", DD + "/dmsg-discovery/clients-by-server/" + s.pk).json()]
check(clients == [c2.pk], "the deleted client is gone from its server's list")

if os.environ.get("E2E_MODE") == "split":
    sys.exit(0)  # no shared mux when every service runs alone
h = request("GET", HEALTH + "/health")
body = h.json()
check(h.status == 200 and body["status"] == "ok", "shared /health is 200 ok")
names = {x["service"] for x in body["services"]}
check("dmsg-discovery" in names, "shared /health lists dmsg-discovery")
m = request("GET", HEALTH + "/metrics").body.decode()
check('sw_http_requests_total{' in m and 'service="dmsg-discovery"' in m,
      "shared /metrics carries dmsg-discovery's request counts")
types = [line for line in m.splitlines() if line.startswith("# TYPE sw_http_requests_total")]
check(len(types) <= 1, "each metric family is declared once")
dbg = request("GET", HEALTH + "/debug/services").json()
check(any(x["name"] == "dmsg-discovery" and x["state"] == "running" for x in dbg),
      "/debug/services says dmsg-discovery is running")

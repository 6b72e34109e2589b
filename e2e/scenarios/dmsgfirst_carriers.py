#!/usr/bin/python3
"""HTTP over dmsg ("dmsgfirst", services.md): the visors reach the
deployment's HTTP APIs over dmsg port 80, and fall back to TCP.

- An operator's raw HTTP/1.1 over a dmsg stream (dmsg-cat to
  transport-discovery's PK, port 80) gets the same answers as over TCP: a
  64 KiB+ body is refused with 413, and httpauth takes one nonce sequence
  whichever carrier brings each request (a nonce used over dmsg is refused
  over TCP and the other way round).
- Visor requests to transport-discovery (registering a transport),
  address-resolver (resolving an stcpr peer), route-finder (a route query), service-discovery and dmsg-discovery (the
  HTTP fallback of a feed query) go over dmsg: the services count them under carrier "dmsg" and the visor
  makes none over TCP meanwhile.  A visor remembers a failed dial for 60 s,
  but a service not on dmsg yet (its dmsg side registers a moment after
  the visors first ask) only for 1 s, doubling: 20 s of uptime are plenty.
- A visor configured with a wrong service-discovery PK publishes its
  service all the same, over TCP, within the 2 s fallback.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "py"))
from swclient import Key, auth_request, metric, request, wait_until  # noqa: E402
import dmsghttp  # noqa: E402
from dmsghttp import raw_request  # noqa: E402

CONFIG = os.environ.get("E2E_CONFIG", "compose/deployment.json")
DD = os.environ.get("E2E_DD", "http://127.0.0.1:9090")
BIN = os.path.join(os.environ.get("SW_BUILD", "build"), "bin")
E2E_DIR = os.environ.get("E2E_DIR", ".e2e")


def check(cond, what):
    if not cond:
        sys.exit("FAIL: " + what)
    print("ok:", what)


if os.environ.get("E2E_COMPOSE"):
    # 77: skipped (e2e/test.sh); it dials the listen addresses of the deployment file and
    # runs a visor of its own beside the deployment, which only the host modes allow.
    print("compose mode: uses deployment.json's loopback addresses and a visor of its own")
    sys.exit(77)
services = json.load(open(CONFIG))["services"]
by_type = {}
for s in services:
    by_type.setdefault(s["type"], []).append(s)
tpd = by_type["transport-discovery"][0]
sd = by_type["service-discovery"][0]
dd = by_type["dmsg-discovery"][0]
visors = by_type["visor"]
TPD = "http://" + tpd["listen"]
SD = "http://" + sd["listen"]
AR = "http://" + by_type["address-resolver"][0]["listen"]
RF = "http://" + by_type["route-finder"][0]["listen"]
V1 = "http://" + visors[0]["api_listen"]


def over_dmsg(pk, raw, timeout=15):
    return dmsghttp.over_dmsg(BIN, DD, pk, raw, timeout)


# ---- the same answers, the same limits ----
status, body = over_dmsg(tpd["public_key"], raw_request("GET", "/all-transports"))
check(status == 200 and json.loads(body) == request("GET", TPD + "/all-transports").json(),
      "GET /all-transports over dmsg answers what TCP answers")
status, body = over_dmsg(tpd["public_key"], raw_request("GET", "/no/such/route"))
check(status == 404 and "error" in json.loads(body), "an unknown route over dmsg is a JSON 404")
big = b"[" + b" " * (64 * 1024) + b"]"
status, body = over_dmsg(tpd["public_key"], raw_request("POST", "/transports/", big))
check(status == 413, "a 64 KiB+ body over dmsg gets 413")

# ---- httpauth: one nonce sequence across both carriers ----
key = Key()
nonce = request("GET", TPD + "/security/nonces/" + key.pk).json()["next_nonce"]
tid = "00000000-0000-8000-8000-000000000000"
path = "/transports/id:" + tid


def signed_over_dmsg(n, tamper=False):
    msg = b"DELETE " + path.encode() + b"\n" + str(n).encode() + b"\n"
    hdrs = {"SW-Public": key.pk, "SW-Nonce": str(n), "SW-Sig": key.sign(msg)}
    if tamper:
        hdrs["SW-Sig"] = ("1" if hdrs["SW-Sig"][0] == "0" else "0") + hdrs["SW-Sig"][1:]
    return over_dmsg(tpd["public_key"], raw_request("DELETE", path, headers=hdrs))


status, body = signed_over_dmsg(nonce)
check(status == 404, "a signed request over dmsg is accepted (404: no such transport)")
r = auth_request(TPD, "DELETE", path, key, nonce=nonce)
check(r.status == 401 and r.json().get("next_nonce") == nonce + 1,
      "the same nonce over TCP is refused, next_nonce moved on")
r = auth_request(TPD, "DELETE", path, key, nonce=nonce + 1)
check(r.status == 404, "the next nonce over TCP is accepted")
status, body = signed_over_dmsg(nonce + 1)
check(status == 401 and json.loads(body).get("next_nonce") == nonce + 2,
      "that nonce over dmsg is refused")
status, body = signed_over_dmsg(nonce + 2, tamper=True)
check(status == 401, "a bad signature over dmsg is refused")
status, body = signed_over_dmsg(nonce + 2)
check(status == 404, "and the nonce it did not use still works over dmsg")

# ---- the visors' own requests go over dmsg ----
check(wait_until(lambda: request("GET", V1 + "/health").json()["uptime_s"] >= 20, 35, 0.5),
      "visor-1 is past what a start-up dial failure (the service not on dmsg yet) is "
      "remembered")


def vmetric(carrier):
    return metric(V1, "sw_http_client_requests_total",
                  'service="%s",carrier="%s"' % (visors[0]["name"], carrier))


def smetric(base, svc, carrier):
    return metric(base, "sw_http_carrier_requests_total",
                  'service="%s",carrier="%s"' % (svc, carrier))


def ar_binds():
    # The stcpr binding's refresh stays on TCP by design (the resolver must see the IP).
    return metric(AR, "sw_http_requests_total", 'route="/bind/stcpr",method="POST"')


v_tcp0, v_dmsg0, binds0 = vmetric("tcp"), vmetric("dmsg"), ar_binds()
tpd0 = smetric(TPD, "transport-discovery", "dmsg")
sd0 = smetric(SD, "service-discovery", "dmsg")
dd0 = smetric(DD, "dmsg-discovery", "dmsg")
rf0 = smetric(RF, "route-finder", "dmsg")
ar0 = smetric(AR, "address-resolver", "dmsg")
r = request("POST", V1 + "/api/transports", {"remote_pk": visors[1]["public_key"], "type": "dmsg"},
            timeout=30)
check(r.status in (200, 201), "visor-1 opens a dmsg transport to visor-2")
t_id = r.json()["t_id"]
check(wait_until(lambda: request("GET", TPD + "/transports/id:" + t_id).status == 200, 10),
      "transport-discovery has it")
nobody = os.urandom(32).hex()
r = request("GET", V1 + "/api/services/vpn?publisher=" + nobody)
check(r.status == 200 and r.json()["source"] == "http",
      "a services query with its feed unreachable is answered from service-discovery's HTTP")
server_pk = by_type["dmsg-server"][0]["public_key"]
r = request("GET", V1 + "/api/dmsg/clients-by-server/" + server_pk + "?publisher=" + nobody)
check(r.status == 200 and r.json()["source"] == "http",
      "a clients query with its feed unreachable is answered from dmsg-discovery's HTTP")
r = request("POST", V1 + "/api/transports", {"remote_pk": visors[2]["public_key"],
                                             "type": "stcpr"}, timeout=30)
check(r.status in (200, 201), "visor-1 opens an stcpr transport to visor-3 (resolved first)")
request("DELETE", V1 + "/api/transports/" + r.json()["t_id"], timeout=30)
r = request("GET", V1 + "/api/routes/find/" + visors[1]["public_key"], timeout=30)
check(r.status in (200, 404), "visor-1 asks route-finder for a route to visor-2")
r = request("DELETE", V1 + "/api/transports/" + t_id, timeout=30)
check(r.status == 200, "visor-1 removes the transport")
check(wait_until(lambda: request("GET", TPD + "/transports/id:" + t_id).status == 404, 10),
      "transport-discovery no longer has it")
check(smetric(TPD, "transport-discovery", "dmsg") >= tpd0 + 2,
      "transport-discovery served the register and the delete over dmsg")
check(smetric(SD, "service-discovery", "dmsg") >= sd0 + 1,
      "service-discovery served the fallback query over dmsg")
check(smetric(DD, "dmsg-discovery", "dmsg") >= dd0 + 1,
      "dmsg-discovery served the fallback query over dmsg")
check(smetric(AR, "address-resolver", "dmsg") >= ar0 + 1,
      "address-resolver served the resolve over dmsg")
check(smetric(RF, "route-finder", "dmsg") >= rf0 + 1,
      "route-finder served the route query over dmsg")
check(vmetric("dmsg") >= v_dmsg0 + 6, "visor-1 counts those requests under dmsg")
check(vmetric("tcp") - v_tcp0 <= ar_binds() - binds0,
      "and none over TCP meanwhile (but a binding refresh, which stays on TCP)")

# ---- a wrong PK: TCP within the fallback time ----
vk = Key()
wrong = Key().pk
inst = dict(visors[-1])
inst.update({"name": "visor-wrongpk", "public_key": vk.pk, "secret_key": vk.seed,
             "service_discovery_pk": wrong, "api_listen": "127.0.0.1:8019",
             "publish": [{"type": "visor", "port": 0}]})
for k in ("transport_setup_pks", "autoconnect"):
    inst.pop(k, None)
cfg = {"log": {"level": "info", "format": "text"}, "services": [inst]}
fd, cfg_path = tempfile.mkstemp(suffix=".json", dir=E2E_DIR)
with os.fdopen(fd, "w") as f:
    json.dump(cfg, f)
log = open(os.path.join(E2E_DIR, "visor-wrongpk.log"), "w")
t0 = time.time()
proc = subprocess.Popen([os.path.join(BIN, "visor"), "-c", cfg_path, "--name", "visor-wrongpk"],
                        stdout=log, stderr=log)
try:
    found = wait_until(lambda: request("GET", SD + "/api/services/" + vk.pk + ":0?type=visor")
                       .status == 200, 10, 0.05)
    took = time.time() - t0
    check(found, "a visor with a wrong service-discovery PK still publishes its service")
    check(took < 2.0 + 2.0, "within the 2 s fallback (took %.2f s, start-up included)" % took)
    check(metric("http://127.0.0.1:8019", "sw_http_client_requests_total",
                 'carrier="tcp"') >= 1, "over TCP, as its metrics say")
finally:
    proc.terminate()
    proc.wait(10)
    os.unlink(cfg_path)

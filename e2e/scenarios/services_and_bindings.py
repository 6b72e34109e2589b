#!/usr/bin/python3
"""A visor advertises a vpn server in the running deployment's
service-discovery and a client finds it by type, country and version (and
as a random pick); the visor binds for stcpr and sudph at the
address-resolver, and a client resolves it both ways: the stcpr answer
carries the local addresses (same host, so same NAT) and the sudph resolve
makes the resolver send the visor a signed dial naming the client."""
import json
import os
import socket
import sys
import urllib.parse

import nacl.signing

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "py"))
from swclient import Key, auth_request, request  # noqa: E402

SD = os.environ.get("E2E_SD", "http://127.0.0.1:9098")
AR = os.environ.get("E2E_AR", "http://127.0.0.1:9093")
HEALTH = os.environ.get("E2E_HEALTH", "http://127.0.0.1:9100")
# The address this client sends from (compose: the runner's own, not loopback).
SELF = os.environ.get("E2E_SELF_HOST", "127.0.0.1")
AR_UDP = (urllib.parse.urlsplit(AR).hostname, urllib.parse.urlsplit(AR).port)


def check(cond, what):
    if not cond:
        sys.exit("FAIL: " + what)
    print("ok:", what)


def dgram(key, typ, obj):
    js = json.dumps(obj).encode()
    pk = bytes.fromhex(key.pk)
    return bytes([typ]) + pk + key.sk.sign(bytes([typ]) + pk + js).signature + js


def verified(data):
    typ, pk, sig, js = data[0], data[1:33], data[33:97], data[97:]
    nacl.signing.VerifyKey(pk).verify(bytes([typ]) + pk + js, sig)
    return typ, json.loads(js)


visor, client = Key(), Key()
version = "e2e-" + os.urandom(4).hex()

# service-discovery
svc = {"address": visor.pk + ":44", "type": "vpn", "version": version,
       "geo": {"country": "IS", "region": "Reykjavik"}, "local_ips": ["10.9.9.9"]}
r = auth_request(SD, "POST", "/api/services", visor, svc)
check(r.status == 200 and r.json()["registered"] > 0, "visor registers its vpn service")
found = request("GET", SD + "/api/services?type=vpn&country=IS&version=" + version).json()
check([s["address"] for s in found] == [visor.pk + ":44"], "found by type, country and version")
pick = request("GET", SD + "/api/services?type=vpn&quantity=1").json()
check(len(pick) == 1, "quantity=1 picks one")
check(auth_request(SD, "POST", "/api/services", visor,
                   {"address": visor.pk + ":3", "type": "proxy"}).status == 200,
      "skysocks registered as proxy")
check(request("GET", SD + "/api/services/%s:3?type=skysocks" % visor.pk).json()["type"] ==
      "skysocks", "proxy is stored as skysocks")
check(auth_request(SD, "POST", "/api/services", client, svc).status == 403,
      "nobody else may register the visor's address")
check(auth_request(SD, "DELETE", "/api/services/%s:44?type=vpn" % visor.pk, visor).status == 200,
      "visor withdraws its service")
check(request("GET", SD + "/api/services?type=vpn&version=" + version).json() == [],
      "withdrawn service is gone")

# address-resolver: stcpr
r = auth_request(AR, "POST", "/bind/stcpr", visor, {"port": 7000, "local_addresses": ["10.9.9.9"]})
check(r.status == 200 and r.json()["remote_addr"] == SELF + ":7000", "visor binds for stcpr")
r = auth_request(AR, "GET", "/resolve/stcpr/" + visor.pk, client)
check(r.status == 200 and r.json()["is_local"] and r.json()["local_addresses"] == ["10.9.9.9"],
      "client on the same host resolves it with its local addresses")

# address-resolver: sudph
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((SELF, 0))
s.settimeout(5)
me = "%s:%d" % s.getsockname()
s.sendto(dgram(visor, 1, {"port": 7001, "local_addresses": []}), AR_UDP)
typ, ack = verified(s.recvfrom(2048)[0])
check((typ, ack) == (4, {"addr": me}), "sudph bind is acked with the address seen")
s.sendto(dgram(visor, 2, {}), AR_UDP)
check(verified(s.recvfrom(2048)[0])[0] == 4, "heartbeat is acked")
tp = request("GET", AR + "/transports").json()
check(visor.pk in tp["stcpr"] and visor.pk in tp["sudph"], "/transports lists both bindings")
r = auth_request(AR, "GET", "/resolve/sudph/" + visor.pk, client)
check(r.status == 200 and r.json()["remote_addr"] == me, "client resolves the sudph binding")
typ, dial = verified(s.recvfrom(2048)[0])
check(typ == 5 and dial["pk"] == client.pk, "the visor is told to punch towards the client")
s.sendto(dgram(visor, 3, {}), AR_UDP)
check(auth_request(AR, "DELETE", "/bind/stcpr", visor).status == 200, "visor unbinds stcpr")
s.close()

if os.environ.get("E2E_MODE") == "split":
    sys.exit(0)
names = {x["service"] for x in request("GET", HEALTH + "/health").json()["services"]}
check({"service-discovery", "address-resolver"} <= names,
      "shared /health lists service-discovery and address-resolver")

#!/usr/bin/python3
"""List a deployment's instances for the split e2e mode: one line each,
"type name health_url" (health_url '-' when the instance has no HTTP port)."""
import json
import sys

d = json.load(open(sys.argv[1]))
for inst in d["services"]:
    t = inst["type"]
    name = inst.get("name", t)
    addr = inst.get("health_listen") or inst.get("api_listen") or inst.get("listen")
    if t == "dmsg-server" and not inst.get("health_listen"):
        addr = "127.0.0.1:8082"
    path = "/api/pk" if t == "visor" else "/health"
    print(t, name, ("http://%s%s" % (addr, path)) if addr else "-")

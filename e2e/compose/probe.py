#!/usr/bin/python3
"""Inside the compose network (run in the e2e runner by the compose-only
scenarios): write a batch of records through the given replicas, read them
back from each, and read each replica's CXO feed.  One JSON argument:

  {"seed": "…", "n": 20, "tpd": [url…], "sd": [url…], "dd": [url…],
   "cxo": {"tpd": [ip:port…], "sd": […], "dd": […]}, "pks": {"tpd": hex, …}}

  probe.py write SPEC   -> {"tpd": written, "sd": …, "dd": …}
  probe.py read SPEC    -> per service: found per replica, duplicates, same answers
  probe.py feeds SPEC   -> per feed: ms until every replica's tree hash is equal
  probe.py write-feeds SPEC -> write, then feeds timed from the last write
Keys are derived from the seed, so a later read knows what an earlier write
wrote without being told."""
import hashlib
import json
import os
import sys
import time

here = os.path.dirname(__file__)
sys.path.insert(0, os.path.join(here, "..", "..", "tests", "py"))
sys.path.insert(0, os.path.join(here, "..", "..", "tests", "transport-discovery"))
from cxo import read_feed  # noqa: E402
from swclient import Key, auth_request, client_entry, request  # noqa: E402
from tpclient import entry  # noqa: E402

FEED_PORTS = {"dd": 46, "sd": 48, "tpd": 49}


def key(seed, what, i):
    return Key(hashlib.sha256(("%s/%s/%d" % (seed, what, i)).encode()).digest())


def records(spec):
    """The records of this seed: (key, payload) per service."""
    n, seed = spec["n"], spec["seed"]
    server = spec.get("server_pk", "00" * 32)
    out = {"tpd": [], "sd": [], "dd": []}
    for i in range(n):
        a, b = key(seed, "tp-a", i), key(seed, "tp-b", i)
        out["tpd"].append((a, entry(a, b, "stcpr")))
        v = key(seed, "sd", i)
        out["sd"].append((v, {"address": v.pk + ":44", "type": "vpn", "version": "probe-" + seed,
                              "geo": {"country": "IS"}}))
        c = key(seed, "dd", i)
        out["dd"].append((c, client_entry(c, 0, [server])))
    return out


def write(spec):
    done = {}
    recs = records(spec)
    for svc in ("tpd", "sd", "dd"):
        urls = spec.get(svc) or []
        if not urls:
            continue
        ok = 0
        for i, (k, body) in enumerate(recs[svc]):
            url = urls[i % len(urls)]  # alternate the replicas
            if svc == "tpd":
                r = auth_request(url, "POST", "/transports/", k, [body])
                ok += r.status == 201
            elif svc == "sd":
                r = auth_request(url, "POST", "/api/services", k, body)
                ok += r.status == 200
            else:
                r = request("POST", url + "/dmsg-discovery/entry/", body)
                ok += r.status == 200
        done[svc] = ok
    return done


def read_one(svc, url, recs, spec):
    """(found, answers, matching records in the listing) through one replica."""
    answers = []
    for k, body in recs:
        if svc == "tpd":
            r = request("GET", url + "/transports/id:" + body["t_id"])
        elif svc == "sd":
            r = request("GET", url + "/api/services/%s:44?type=vpn" % k.pk)
        else:
            r = request("GET", url + "/dmsg-discovery/entry/" + k.pk)
        answers.append(r.json() if r.status == 200 else None)
    found = sum(a is not None for a in answers)
    if svc == "tpd":
        ids = [e["t_id"] for e in request("GET", url + "/all-transports").json()]
        mine = {b["t_id"] for _, b in recs}
        listed = sum(i in mine for i in ids)
    elif svc == "sd":
        lst = request("GET", url + "/api/services?type=vpn&version=probe-" + spec["seed"]).json()
        listed = len(lst)
    else:
        server = spec.get("server_pk", "00" * 32)
        lst = request("GET", url + "/dmsg-discovery/clients-by-server/" + server).json()
        mine = {k.pk for k, _ in recs}
        listed = sum(e["static"] in mine for e in lst)
    return found, answers, listed


def read(spec):
    out = {}
    recs = records(spec)
    for svc in ("tpd", "sd", "dd"):
        urls = spec.get(svc) or []
        if not urls:
            continue
        per = [read_one(svc, u, recs[svc], spec) for u in urls]
        out[svc] = {"found": [p[0] for p in per], "listed": [p[2] for p in per],
                    "same": all(p[1] == per[0][1] for p in per)}
    return out


def feeds(spec, since=None):
    """Poll every replica's feed until their tree hashes are equal (or the
    deadline); ms counts from since (the last write) when given.  "same_but"
    compares the leaves without those of the publishers' own keys: replicas
    sharing a key also share one dmsg identity, and their dmsg entries (leaves
    of dmsg-discovery's feed) change while they take turns on the session."""
    out = {}
    deadline_s = spec.get("deadline_s", 1.0)
    own = set(spec["pks"].values())
    for svc, addrs in (spec.get("cxo") or {}).items():
        pk = spec["pks"][svc]
        t0 = since if since is not None else time.monotonic()
        while True:
            snaps = [read_feed(a, pk, FEED_PORTS[svc]) for a in addrs]
            trees = [r["tree"].hex() for r, _ in snaps]
            rest = [{p: v for p, v in t.items() if p.rsplit("/", 1)[-1] not in own}
                    for _, t in snaps]
            ms = (time.monotonic() - t0) * 1000
            if len(set(trees)) == 1 or ms > deadline_s * 1000:
                break
            time.sleep(0.02)
        out[svc] = {"converged": len(set(trees)) == 1, "ms": round(ms), "trees": trees,
                    "same_but_own": all(r == rest[0] for r in rest),
                    "leaves": [len(t) for _, t in snaps]}
    return out


def write_feeds(spec):
    """write, then feeds timed from the last write."""
    w = write(spec)
    return {"write": w, "feeds": feeds(spec, time.monotonic())}


if __name__ == "__main__":
    cmd, spec = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps({"write": write, "read": read, "feeds": feeds, "write-feeds": write_feeds}[cmd](spec)))

"""Driver of bench/route-finder.sh and bench/transport-discovery.sh.

  fill TD_URL VISORS TRANSPORTS PKFILE   register a random graph in
      transport-discovery: every transport is posted (httpauth) by one of its
      edges, up to 100 per request; writes the visors' PKs to PKFILE and
      prints one t_id and the PK of a visor with transports
  query RF_URL PKFILE N                  N POST /routes for random pairs,
      one pair each, over one keep-alive connection; prints latency
      percentiles and how many pairs had a path
"""
import http.client
import json
import os
import random
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "py"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests",
                                "transport-discovery"))
from swclient import Key  # noqa: E402
from tpclient import entry  # noqa: E402

TYPES = ["dmsg", "stcpr", "sudph"]


def conn(url):
    u = urllib.parse.urlparse(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=30)


def fill(url, nvisors, ntransports, pkfile):
    rnd = random.Random(1)
    keys = [Key() for _ in range(nvisors)]
    owned = [[] for _ in range(nvisors)]
    seen = set()
    # Random pairs, some visors busier than others (a few public hubs).
    hubs = max(1, nvisors // 100)
    while len(seen) < ntransports:
        a = rnd.randrange(hubs) if rnd.random() < 0.1 else rnd.randrange(nvisors)
        b = rnd.randrange(nvisors)
        t = rnd.choice(TYPES)
        if a == b or (min(a, b), max(a, b), t) in seen:
            continue
        seen.add((min(a, b), max(a, b), t))
        owned[a].append(entry(keys[a], keys[b], t))
    c = conn(url)
    nonce = {}
    for i, es in enumerate(owned):
        for j in range(0, len(es), 100):
            k = keys[i]
            body = json.dumps(es[j:j + 100]).encode()
            n = nonce.get(k.pk, 0)
            msg = b"POST /transports/\n" + str(n).encode() + b"\n" + body
            c.request("POST", "/transports/", body, {
                "Content-Type": "application/json", "SW-Public": k.pk,
                "SW-Nonce": str(n), "SW-Sig": k.sign(msg)})
            r = c.getresponse()
            r.read()
            if r.status != 201:
                sys.exit("fill: POST returned %d" % r.status)
            nonce[k.pk] = n + 1
    with open(pkfile, "w") as f:
        f.write("\n".join(k.pk for k in keys))
    first = next(es for es in owned if es)
    print(first[0]["t_id"], first[0]["edges"][0])


def query(url, pkfile, n):
    rnd = random.Random(2)
    pks = open(pkfile).read().split()
    c = conn(url)
    lat = []
    found = 0
    for _ in range(n):
        a, b = rnd.sample(pks, 2)
        body = json.dumps({"edges": [[a, b]]}).encode()
        t0 = time.perf_counter()
        c.request("POST", "/routes", body, {"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        lat.append(time.perf_counter() - t0)
        if r.status == 200:
            found += 1
        elif r.status != 404:
            sys.exit("query: POST /routes returned %d: %s" % (r.status, data[:200]))
    lat.sort()

    def pct(p):
        return 1000 * lat[min(len(lat) - 1, int(p * len(lat)))]
    print("%.3f %.3f %.3f %d" % (pct(0.50), pct(0.90), pct(0.99), found))


if __name__ == "__main__":
    if sys.argv[1] == "fill":
        fill(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    else:
        query(sys.argv[2], sys.argv[3], int(sys.argv[4]))

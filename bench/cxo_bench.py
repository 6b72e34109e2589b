"""bench/cxo: a 10,000-entry clients-by-server snapshot and one update, read
over CXO (tests/py/cxo.py) and over HTTP GET from the same dmsg-discovery.
Prints time and bytes and the HTTP/CXO ratios.
usage: cxo_bench.py HTTP_BASE CXO_ADDR FEED_PK [N] [SERVERS]"""
import http.client
import json
import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "py"))
from cxo import Reader  # noqa: E402
from swclient import Key, client_entry  # noqa: E402

base, cxo_addr, feed_pk = sys.argv[1], sys.argv[2], sys.argv[3]
n = int(sys.argv[4]) if len(sys.argv) > 4 else 10000
nserv = int(sys.argv[5]) if len(sys.argv) > 5 else 10
u = urllib.parse.urlparse(base)
conn = http.client.HTTPConnection(u.hostname, u.port)
servers = [Key().pk for _ in range(nserv)]
keys = []
for i in range(n):
    k = Key()
    keys.append(k)
    conn.request("POST", "/dmsg-discovery/entry/",
                 json.dumps(client_entry(k, 0, [servers[i % nserv]])),
                 {"Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    assert r.status == 200, r.status


def http_all():
    """Every server's list, as a poller would read them; -> (seconds, bytes, entries)."""
    t0, nb, ne = time.perf_counter(), 0, 0
    for s in servers:
        conn.request("GET", "/dmsg-discovery/clients-by-server/" + s)
        r = conn.getresponse()
        body = r.read()
        nb += len(body) + sum(len(k) + len(v) + 4 for k, v in r.getheaders()) + 17
        ne += len(json.loads(body))
    return time.perf_counter() - t0, nb, ne


# Wait until the feed has everything.
while True:
    rd = Reader(cxo_addr, feed_pk, 46)
    _, tree = rd.snapshot()
    rd.close()
    if len(tree) == n:
        break
    time.sleep(0.2)

rd = Reader(cxo_addr, feed_pk, 46)
t0 = time.perf_counter()
root, tree = rd.snapshot()
cxo_snap_t = time.perf_counter() - t0
cxo_snap_b = rd.bytes_in + rd.bytes_out
assert len(tree) == n
http_snap_t, http_snap_b, ne = http_all()
assert ne == n

# One update: a client re-registers (sequence 1).
k = keys[n // 2]
conn.request("POST", "/dmsg-discovery/entry/",
             json.dumps(client_entry(k, 1, [servers[(n // 2) % nserv]])),
             {"Content-Type": "application/json"})
conn.getresponse().read()
b0, q0 = rd.bytes_in + rd.bytes_out, rd.rqobj
t0 = time.perf_counter()
r2 = rd.next_root()
tree2 = rd.tree(r2)
cxo_upd_t = time.perf_counter() - t0
cxo_upd_b = rd.bytes_in + rd.bytes_out - b0
assert tree2 is not None and len(tree2) == n
changed = [p for p in tree2 if tree2[p] != tree.get(p)]
assert len(changed) == 1, changed
rd.close()
http_upd_t, http_upd_b, _ = http_all()

print("%-34s %10s %12s" % ("", "time ms", "bytes"))
print("%-34s %10.1f %12d" % ("CXO snapshot (%d entries)" % n, cxo_snap_t * 1e3, cxo_snap_b))
print("%-34s %10.1f %12d" % ("HTTP GET of the %d lists" % nserv, http_snap_t * 1e3, http_snap_b))
print("%-34s %10.1f %12d   (%d objects fetched)" % ("CXO one update", cxo_upd_t * 1e3, cxo_upd_b,
                                                     rd.rqobj - q0))
print("%-34s %10.1f %12d" % ("HTTP re-GET of the lists", http_upd_t * 1e3, http_upd_b))
print("ratios HTTP/CXO: snapshot time %.2f bytes %.2f; update time %.1f bytes %.1f" % (
    http_snap_t / cxo_snap_t, http_snap_b / cxo_snap_b, http_upd_t / cxo_upd_t,
    http_upd_b / cxo_upd_b))
# The rows of make bench's summary table (format: bench/lib.sh).
print("SUMMARY|CXO snapshot of %d entries|%.1f|ms|HTTP GET of the lists %.1f ms|%.0f%%|<= 200%%" % (
    n, cxo_snap_t * 1e3, http_snap_t * 1e3, 100 * cxo_snap_t / http_snap_t))
print("SUMMARY|CXO one update (%d entries)|%.1f|ms|HTTP re-GET of the lists %.1f ms|%.0f%%|-" % (
    n, cxo_upd_t * 1e3, http_upd_t * 1e3, 100 * cxo_upd_t / http_upd_t))

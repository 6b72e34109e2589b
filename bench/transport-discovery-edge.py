"""Pick the edges bench/transport-discovery.sh and bench/profile measure.

  transport-discovery-edge.py TD_URL PKFILE [WANT]

Asks GET /transports/edge:{pk} for the visors of PKFILE (bench/route-finder.py
fill writes it) over one keep-alive connection, at most 400 of them, and
prints "PK COUNT" of the first visor with WANT transports (default 10: a
typical visor, 10,000 transports between 2,000 visors), or the nearest
count seen: a large WANT gives the busiest of them, one of the fill's hubs
(its first visors)."""
import http.client
import json
import sys
import urllib.parse

url, pkfile = sys.argv[1], sys.argv[2]
want = int(sys.argv[3]) if len(sys.argv) > 3 else 10
u = urllib.parse.urlparse(url)
c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
best = None
for pk in open(pkfile).read().split()[:400]:
    c.request("GET", "/transports/edge:" + pk)
    r = c.getresponse()
    body = r.read()
    if r.status != 200:
        sys.exit("edge: GET returned %d" % r.status)
    n = len(json.loads(body))
    if best is None or abs(n - want) < abs(best[1] - want):
        best = (pk, n)
    if n == want:
        break
print(best[0], best[1])

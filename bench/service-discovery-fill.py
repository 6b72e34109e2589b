"""Register N vpn services (httpauth, spread over 20 countries) in a
service-discovery over one keep-alive connection; print one service's
address and the country with the most services."""
import http.client
import json
import os
import sys
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "py"))
from swclient import Key  # noqa: E402

COUNTRIES = ["AT", "BE", "CH", "DE", "DK", "ES", "FI", "FR", "GB", "IE",
             "IS", "IT", "NL", "NO", "PL", "PT", "SE", "US", "CA", "JP"]
base, n = sys.argv[1], int(sys.argv[2])
u = urllib.parse.urlparse(base)
conn = http.client.HTTPConnection(u.hostname, u.port)
first = None
for i in range(n):
    k = Key()
    body = json.dumps({"address": k.pk + ":44", "type": "vpn", "version": "1.0.%d" % (i % 3),
                       "geo": {"country": COUNTRIES[i % len(COUNTRIES)]}}).encode()
    msg = b"POST /api/services\n0\n" + body
    conn.request("POST", "/api/services", body, {
        "Content-Type": "application/json", "SW-Public": k.pk, "SW-Nonce": "0",
        "SW-Sig": k.sign(msg)})
    r = conn.getresponse()
    r.read()
    if r.status != 200:
        sys.exit("fill: POST returned %d" % r.status)
    first = first or k.pk + ":44"
print(first, COUNTRIES[0])

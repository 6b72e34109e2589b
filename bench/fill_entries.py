"""Register N signed client entries in a dmsg-discovery; print one entry's PK."""
import os
import sys
import json
import time
import http.client
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "py"))
from swclient import Key, client_entry  # noqa: E402

base, n = sys.argv[1], int(sys.argv[2])
u = urllib.parse.urlparse(base)
conn = http.client.HTTPConnection(u.hostname, u.port)
server = Key().pk
first = None
for i in range(n):
    k = Key()
    body = json.dumps(client_entry(k, 0, [server], ts=time.time()))
    conn.request("POST", "/dmsg-discovery/entry/", body, {"Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    if r.status != 200:
        sys.exit("fill: POST returned %d" % r.status)
    first = first or k.pk
print(first)

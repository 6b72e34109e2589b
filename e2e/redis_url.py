#!/usr/bin/python3
"""Print host and port of the deployment's redis (store.redis), if any."""
import json
import sys
import urllib.parse

d = json.load(open(sys.argv[1]))
url = (d.get("store") or {}).get("redis")
if url:
    u = urllib.parse.urlparse(url)
    print(u.hostname or "127.0.0.1", u.port or 6379)

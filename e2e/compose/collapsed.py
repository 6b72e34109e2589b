#!/usr/bin/python3
"""Compose only: the collapsed form (profile "collapsed", service skywire):
the whole one-host deployment in one container, `skywire-svc run` on
compose/deployment.json; its shared /health turns 200 with every service
of the deployment listed and every check ok; then it is removed."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from compose_lib import check, sh, wait_until  # noqa: E402


def dcc(*args):
    return sh("docker-compose", "-f", "compose/docker-compose.yml", "-p",
              os.environ.get("E2E_COMPOSE_PROJECT", "skywire"), "--profile", "collapsed", *args)


want = {s.get("name", s["type"]) for s in json.load(open("compose/deployment.json"))["services"]}
try:
    dcc("up", "-d", "--no-build", "skywire")
    cid = dcc("ps", "-q", "skywire").strip()
    health = {}

    def healthy():
        r = os.popen("docker exec %s curl -s http://127.0.0.1:9100/health" % cid).read()
        try:
            health["h"] = json.loads(r)
        except ValueError:
            return False
        return health["h"].get("status") == "ok"

    check(wait_until(healthy, 60), "the collapsed container's shared /health is ok")
    got = {s["service"] for s in health["h"]["services"]}
    check(got == want, "it runs every instance of compose/deployment.json (%d)" % len(want))
    check(all(set(s["checks"].values()) <= {"ok"} for s in health["h"]["services"]),
          "every check of every service is ok")
finally:
    dcc("rm", "-fsv", "skywire")

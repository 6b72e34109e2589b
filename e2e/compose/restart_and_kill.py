#!/usr/bin/python3
"""Compose only: `docker-compose restart transport-discovery`; a crash of
dmsg-discovery (SIGKILL to its process: the engine restarts it by itself,
restart: unless-stopped); `docker kill -s KILL` of service-discovery (an
operator's stop to the engine: `up -d` brings it back).  Nothing written
before is lost or duplicated (redis holds it: counts written and read back
are printed), and the visors are healthy after each."""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from compose_lib import (by_name, check, dc, ids, inspect, probe, sh, visors_ok,  # noqa: E402
                         wait_healthy, wait_until)

N = 20
spec = by_name(os.urandom(4).hex(), N)
w = probe("write", spec)
print("written:", w)
check(w == {"tpd": N, "sd": N, "dd": N}, "%d transports, services, dmsg entries written" % N)

# restart transport-discovery
dc("restart", "transport-discovery")
wait_healthy(60)
r = probe("read", spec)
print("read back after restart:", r)
check(r["tpd"]["found"] == [N] and r["tpd"]["listed"] == [N],
      "after restart: all %d transports read back, each listed once" % N)
check(visors_ok(), "visors healthy after the restart")

# A crash: SIGKILL to dmsg-discovery's process.  The engine restarts it by
# itself (restart: unless-stopped).
cid = ids("dmsg-discovery")[0]
before = int(inspect(cid, "{{.RestartCount}}"))
sh("kill", "-KILL", inspect(cid, "{{.State.Pid}}"))
check(wait_until(lambda: int(inspect(cid, "{{.RestartCount}}")) > before, 30),
      "dmsg-discovery killed by SIGKILL is restarted by the engine")
wait_healthy(60)
r = probe("read", spec)
print("read back after the crash:", r)
check(r["dd"]["found"] == [N] and r["dd"]["listed"] == [N],
      "after the crash: all %d dmsg entries read back, each listed once" % N)
check(visors_ok(), "visors healthy after the crash")

# `docker kill -s KILL` of service-discovery: the engine counts that as an
# operator's stop (no restart policy applies), so `up -d` brings it back.
cid = ids("service-discovery")[0]
sh("docker", "kill", "-s", "KILL", cid)
check(inspect(cid, "{{.State.Status}}") == "exited", "docker kill -s KILL stops service-discovery")
dc("up", "-d", "--no-build")
wait_healthy(60)
r = probe("read", spec)
print("read back after docker kill:", r)
check(r["sd"]["found"] == [N] and r["sd"]["listed"] == [N],
      "after docker kill and up -d: all %d services read back, each listed once" % N)
check(r["tpd"]["found"] == [N] and r["dd"]["found"] == [N], "transports and entries untouched")
check(visors_ok(), "visors healthy after the kill")

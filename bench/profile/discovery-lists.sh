#!/bin/sh
# bench/profile/discovery-lists: where a list GET on redis spends its work,
# in numbers that do not depend on how busy the machine is.  For
# transport-discovery's GET /transports/edge:{pk} (10,000 transports, 2,000
# visors: a visor of 10 transports, the issue's row, and the busiest hub the
# fill makes, ~55) and service-discovery's GET
# /api/services?type=vpn&country=AT&quantity=5 (5,000 services, 20
# countries): the service's instructions per request (valgrind callgrind,
# counted only over the requests) and redis's commands and reply bytes per
# request (INFO commandstats / stats, before and after).  Every build
# given is measured on the same stored data.  Not part of `make bench`
# (valgrind is slow); run it by hand:
#   sh bench/profile/discovery-lists.sh [BIN_DIR...]    (default build/bin)
# PROFILE_NOCACHE=1 also measures the last build with its list cache off
# (every read a miss, as when the list was written since the last read).
set -eu
. bench/lib.sh
REQS=${PROFILE_REQUESTS:-2000}

stat_sum() { # the sum of a field over redis INFO's cmdstat lines, or a stats counter
	redis-cli -p "$RP" info all | tr -d '\r' | awk -F'[:,=]' -v f="$1" '
	    f == "calls" && /^cmdstat_/ {s += $3} f != "calls" && $1 == f {s += $2} END {print s + 0}'
}
requests() { # URL N: N sequential keep-alive GETs
	/usr/bin/python3 - "$1" "$2" <<'PY'
import http.client, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1]); c = http.client.HTTPConnection(u.hostname, u.port)
for _ in range(int(sys.argv[2])):
    c.request("GET", u.path + ("?" + u.query if u.query else "")); r = c.getresponse(); r.read()
    assert r.status == 200, r.status
PY
}
start_svc() { # bin-dir service [args]: $P, $vpid (under callgrind)
	P=$(port)
	sdir=$1 svc=$2; shift 2
	valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$tmp/cg.$svc" \
	    "$sdir/$svc" --listen "127.0.0.1:$P" --log-level warn --redis "redis://127.0.0.1:$RP/0" \
	    "$@" 2>"$tmp/vg.log" &
	vpid=$!
	wait_http "http://127.0.0.1:$P/health"
}
measure() { # label bin-dir service path [args] (on the data already in redis)
	lbl=$1 bdir=$2 svc=$3 path=$4; shift 4
	start_svc "$bdir" "$svc" "$@"
	set -- "$lbl" "$bdir" "$svc" "$path"
	url="http://127.0.0.1:$P$4"
	requests "$url" 50
	c0=$(stat_sum calls); b0=$(stat_sum total_net_output_bytes)
	callgrind_control -i on "$vpid" >/dev/null
	requests "$url" "$REQS"
	callgrind_control -i off "$vpid" >/dev/null
	c1=$(stat_sum calls); b1=$(stat_sum total_net_output_bytes)
	callgrind_control -d "$vpid" >/dev/null
	kill "$vpid"; wait "$vpid" 2>/dev/null || true
	ir=$(callgrind_annotate "$tmp/cg.$3.1" 2>/dev/null |
	    awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}')
	[ -z "${CG_KEEP:-}" ] || cp "$tmp/cg.$3.1" "$CG_KEEP.$3.$(basename "$2")"
	awk -v l="$1" -v ir="$ir" -v n="$REQS" -v c=$((c1 - c0)) -v b=$((b1 - b0)) 'BEGIN {
	    printf "%-52s %8.0f instr/req %4.1f redis cmds/req %6.0f redis reply B/req\n",
	        l, ir / n, c / n, b / n }'
	rm -f "$tmp"/cg.$3*
}
start_redis
set -- "$@"
[ $# -gt 0 ] || set -- "$B/bin"
# transport-discovery: fill once, then every build on the same data.
P=$(port)
"$1/transport-discovery" --listen "127.0.0.1:$P" --log-level warn --redis "redis://127.0.0.1:$RP/0" &
fpid=$!
wait_http "http://127.0.0.1:$P/health"
/usr/bin/python3 bench/route-finder.py fill "http://127.0.0.1:$P" 2000 10000 "$tmp/pks" >/dev/null
hub=$(/usr/bin/python3 bench/transport-discovery-edge.py "http://127.0.0.1:$P" "$tmp/pks" 1000)
hub=${hub% *}
edge=$(/usr/bin/python3 bench/transport-discovery-edge.py "http://127.0.0.1:$P" "$tmp/pks")
pk=${edge% *}; n10=${edge#* }
kill "$fpid"; wait "$fpid" 2>/dev/null || true
for bin in "$@"; do
	measure "transport-discovery GET edge, $n10 entries ($bin)" "$bin" transport-discovery \
	    "/transports/edge:$pk"
	measure "transport-discovery GET edge, hub ($bin)" "$bin" transport-discovery \
	    "/transports/edge:$hub"
done
# The last build with its list cache off: every read misses (a list written between reads).
if [ -n "${PROFILE_NOCACHE:-}" ]; then
	measure "transport-discovery GET edge, $n10 entries (cache off)" "$bin" \
	    transport-discovery "/transports/edge:$pk" --list-cache-bytes 0
fi
redis-cli -p "$RP" flushall >/dev/null
P=$(port)
"$1/service-discovery" --listen "127.0.0.1:$P" --log-level warn --redis "redis://127.0.0.1:$RP/0" &
fpid=$!
wait_http "http://127.0.0.1:$P/health"
cc=$(/usr/bin/python3 bench/service-discovery-fill.py "http://127.0.0.1:$P" 5000 | awk '{print $2}')
kill "$fpid"; wait "$fpid" 2>/dev/null || true
for bin in "$@"; do
	measure "service-discovery GET country q=5 ($bin)" "$bin" service-discovery \
	    "/api/services?type=vpn&country=$cc&quantity=5"
done
if [ -n "${PROFILE_NOCACHE:-}" ]; then
	measure "service-discovery GET country q=5 (cache off)" "$bin" service-discovery \
	    "/api/services?type=vpn&country=$cc&quantity=5" --list-cache-bytes 0
fi

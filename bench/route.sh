#!/bin/sh
# bench/route: routes between four visors (A, B, C, D; each its own process,
# as are the services, on redis), stcpr transports A-B, B-C, C-D and A-C.
# Prints a 64 KiB-message stream A -> C through B against the same bytes
# over the direct A-C transport (ratio; target >= 70 %), B's CPU per GB
# forwarded, and route setup latency p50/p99 over 200 setups of 1 and 3
# hops (target p50 < 5 ms) with the CPU a setup costs over every process,
# and B's idle memory per installed rule (target < 128 bytes; route-rules.c
# installs them).  bench/route.py does the measuring and prints the SUMMARY
# rows.
set -eu
. bench/lib.sh
cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Icommon -o "$tmp/route-rules" \
	bench/route-rules.c "$B/libswcommon.a" $(pkg-config --cflags --libs libevent libsodium libcjson) -lm
start_redis
set -- $(for i in 1 2 3 4 5 6 7 8 9 10 11; do port; done)
cfg=$tmp/route.json
/usr/bin/python3 bench/route.py gen "$cfg" "$@" "$RP" >"$tmp/instances"
vpids=""
while read -r type name url; do
	"$B/bin/$type" -c "$cfg" --name "$name" >"$tmp/$name.log" 2>&1 &
	pids="$pids $!"
	case $type in visor) vpids="$vpids,$name=$!" ;; esac
	wait_http "$url"
done <"$tmp/instances"
ROUTE_PIDS="$pids" /usr/bin/python3 bench/route.py run "$cfg" "${vpids#,}" "$tmp/route-rules"

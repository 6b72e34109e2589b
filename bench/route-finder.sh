#!/bin/sh
# bench/route-finder: a generated graph of 10,000 visors and 50,000
# transports (random pairs, a tenth of them on 1% of hub visors), registered
# through transport-discovery on redis; route-finder reads it from the same
# redis.  Prints the time to load the graph, route-finder's memory (RSS),
# and the latency of POST /routes for one random pair (default 5 paths of at
# most 5 hops), measured by a keep-alive client.  Target: p50 < 5 ms.
set -eu
. bench/lib.sh
VISORS=${BENCH_VISORS:-10000}
TRANSPORTS=${BENCH_TRANSPORTS:-50000}
QUERIES=${BENCH_QUERIES:-2000}

start_redis
TP=$(port)
"$B/bin/transport-discovery" --listen "127.0.0.1:$TP" --log-level warn \
    --redis "redis://127.0.0.1:$RP/0" --entry-timeout-s 3600 &
pids="$pids $!"
wait_http "http://127.0.0.1:$TP/health"
t0=$(date +%s%N)
/usr/bin/python3 bench/route-finder.py fill "http://127.0.0.1:$TP" "$VISORS" "$TRANSPORTS" \
    "$tmp/pks" >/dev/null
t1=$(date +%s%N)
echo "registered $TRANSPORTS transports between $VISORS visors in $(( (t1 - t0) / 1000000 )) ms"

FP=$(port)
t0=$(date +%s%N)
"$B/bin/route-finder" --listen "127.0.0.1:$FP" --log-level warn \
    --redis "redis://127.0.0.1:$RP/0" &
fpid=$!
pids="$pids $fpid"
# /health is 200 once the graph is loaded.
i=0
until curl -fs -o /dev/null "http://127.0.0.1:$FP/health"; do
	i=$((i + 1)); [ $i -lt 1200 ] || { echo "bench: route-finder never loaded" >&2; exit 1; }
	sleep 0.05
done
t1=$(date +%s%N)
echo "route-finder loaded the graph in $(( (t1 - t0) / 1000000 )) ms (start included)"
curl -fs "http://127.0.0.1:$FP/metrics" | awk '/^rf_graph_(visors|transports)/ {print "  " $1 " " $2}'
set -- $(/usr/bin/python3 bench/route-finder.py query "http://127.0.0.1:$FP" "$tmp/pks" "$QUERIES")
echo "POST /routes, one pair, $QUERIES queries: p50 $1 ms  p90 $2 ms  p99 $3 ms  ($4 with a path)"
rss=$(awk '/^VmRSS/ {print $2}' "/proc/$fpid/status")
echo "route-finder RSS: $((rss / 1024)) MiB"
summary "route-finder POST /routes p50 ($VISORS visors, $TRANSPORTS transports)" "$1" ms - - "< 5 ms"
summary "route-finder POST /routes p99" "$3" ms - - -
summary "route-finder RSS ($VISORS visors, $TRANSPORTS transports)" "$((rss / 1024))" MiB - - -
awk -v p="$1" 'BEGIN { exit !(p < 5) }' && echo "target p50 < 5 ms: met" ||
    echo "target p50 < 5 ms: MISSED"

#!/bin/sh
# bench/discovery-http: wrk against GET /dmsg-discovery/entry/{pk} with 10,000
# stored entries (embedded store, then redis), and in the same run against
# nginx returning a fixed 200 and a bare evhttp server returning a fixed body.
# Prints requests/s, p99 latency and the ratios to the two references.
# Targets: >= 50% of nginx in memory, >= 40% with redis.
set -eu
. bench/lib.sh

bench_nginx
bench_evhttp_fixed
printf "%-28s %12s req/s  p99 %8s ms\n" "nginx fixed 200" "$NGX_RPS" "$NGX_P99"
printf "%-28s %12s req/s  p99 %8s ms\n" "bare evhttp fixed body" "$EV_RPS" "$EV_P99"

bench_dd() { # label, target (ratio to nginx), extra args...
	label=$1; target=$2; shift 2
	DP=$(port)
	"$B/bin/dmsg-discovery" --listen "127.0.0.1:$DP" --log-level warn "$@" &
	dpid=$!
	wait_http "http://127.0.0.1:$DP/health"
	pk=$(/usr/bin/python3 bench/fill_entries.py "http://127.0.0.1:$DP" 10000)
	set -- $(run_wrk "http://127.0.0.1:$DP/dmsg-discovery/entry/$pk")
	kill "$dpid"; wait "$dpid" 2>/dev/null || true
	LAST_RPS=$1
	awk -v l="$label" -v r="$1" -v p="$2" -v n="$NGX_RPS" -v e="$EV_RPS" 'BEGIN {
		printf "%-28s %12s req/s  p99 %8s ms   %.0f%% of nginx, %.0f%% of bare evhttp\n",
		    l, r, p, 100*r/n, 100*r/e }'
	summary "$label GET entry" "$1" req/s "nginx $NGX_RPS req/s" "$(pct "$1" "$NGX_RPS")" "$target"
	summary "$label GET entry p99" "$2" ms "nginx $NGX_P99 ms" "$(pct "$2" "$NGX_P99")" -
}
bench_dd "dmsg-discovery (memory)" ">= 50%"
start_redis
bench_redis_get
bench_dd "dmsg-discovery (redis)" ">= 40%" --redis "redis://127.0.0.1:$RP/0"
redis_ratio "dmsg-discovery (redis)" "$LAST_RPS"
summary "dmsg-discovery (redis) GET entry vs redis" "$LAST_RPS" req/s \
    "redis-benchmark GET $RB_RPS req/s" "$(pct "$LAST_RPS" "$RB_RPS")" ">= 50%"
echo "targets: memory >= 50% of nginx, redis >= 40% of nginx and >= 50% of redis-benchmark GET"

#!/bin/sh
# bench/transport-discovery: wrk against transport-discovery's GETs with
# 10,000 registered transports between 2,000 visors (embedded store, then
# redis): one transport by id, and one visor's transports by edge: a typical
# visor of 10 transports (10,000 / 2,000 visors, the issue's row), and the
# busiest hub the fill makes (~47, ~15 KB), an extra row.  nginx returning a fixed 200 is the reference, as in
# bench/discovery-http.  Prints requests/s, p99 latency, ratio to nginx.
set -eu
. bench/lib.sh
N=${BENCH_TRANSPORTS:-10000}

bench_nginx
printf "%-44s %12s req/s  p99 %8s ms\n" "nginx fixed 200" "$NGX_RPS" "$NGX_P99"
report() { # label rps p99
	awk -v l="$1" -v r="$2" -v p="$3" -v n="$NGX_RPS" 'BEGIN {
		printf "%-44s %12s req/s  p99 %8s ms   %.0f%% of nginx\n", l, r, p, 100*r/n }'
	# the hub is an extra row, not one of the issue's: no target
	case $1 in *hub*) t=- ;; *memory*) t=">= 50%" ;; *) t=">= 40%" ;; esac
	summary "$1" "$2" req/s "nginx $NGX_RPS req/s" "$(pct "$2" "$NGX_RPS")" "$t"
	# issue #14: the redis edge list of a typical visor also answers within 2 ms at p99
	case $1 in *"(redis) GET edge ("*) pt="<= 2 ms" ;; *) pt=- ;; esac
	summary "$1 p99" "$3" ms "nginx $NGX_P99 ms" "$(pct "$3" "$NGX_P99")" "$pt"
}
bench_td() { # label, extra args...
	label=$1; shift
	TP=$(port)
	"$B/bin/transport-discovery" --listen "127.0.0.1:$TP" --log-level warn "$@" &
	tpid=$!
	wait_http "http://127.0.0.1:$TP/health"
	set -- $(/usr/bin/python3 bench/route-finder.py fill "http://127.0.0.1:$TP" $((N / 5)) "$N" \
	    "$tmp/pks")
	tid=$1
	set -- $(/usr/bin/python3 bench/transport-discovery-edge.py "http://127.0.0.1:$TP" "$tmp/pks")
	pk=$1; n10=$2
	set -- $(/usr/bin/python3 bench/transport-discovery-edge.py "http://127.0.0.1:$TP" "$tmp/pks" \
	    1000)
	hub=$1; nhub=$2
	set -- $(run_wrk "http://127.0.0.1:$TP/transports/id:$tid")
	report "$label GET id" "$1" "$2"
	[ -z "${RB_RPS:-}" ] || redis_ratio "$label GET id" "$1"
	set -- $(run_wrk "http://127.0.0.1:$TP/transports/edge:$pk")
	report "$label GET edge ($n10 entries)" "$1" "$2"
	[ -z "${RB_RPS:-}" ] || redis_ratio "$label GET edge ($n10 entries)" "$1"
	set -- $(run_wrk "http://127.0.0.1:$TP/transports/edge:$hub")
	echo "(the hub has $nhub transports)"
	report "$label GET edge, hub" "$1" "$2"
	kill "$tpid"; wait "$tpid" 2>/dev/null || true
}
bench_td "transport-discovery (memory)"
start_redis
bench_redis_get
bench_td "transport-discovery (redis)" --redis "redis://127.0.0.1:$RP/0"
echo "targets (as discovery-http): memory >= 50% of nginx, redis >= 40% of nginx"

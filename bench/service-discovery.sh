#!/bin/sh
# bench/service-discovery: wrk against service-discovery's GETs with 5,000
# stored vpn services (embedded store, then redis): one service by address,
# and a filtered random pick (type+country, quantity=5, which reads one
# country index and fetches 5 records).  In the same run, nginx returning a
# fixed 200 is the reference.  Prints requests/s, p99 latency and the ratio
# to nginx.  Structure as bench/discovery-http.sh.
set -eu
. bench/lib.sh
N=${BENCH_SERVICES:-5000}

bench_nginx
printf "%-50s %12s req/s  p99 %8s ms\n" "nginx fixed 200" "$NGX_RPS" "$NGX_P99"

report() { # label rps p99
	awk -v l="$1" -v r="$2" -v p="$3" -v n="$NGX_RPS" 'BEGIN {
		printf "%-50s %12s req/s  p99 %8s ms   %.0f%% of nginx\n", l, r, p, 100*r/n }'
	case $1 in *memory*) t=">= 50%" ;; *) t=">= 40%" ;; esac
	summary "$1" "$2" req/s "nginx $NGX_RPS req/s" "$(pct "$2" "$NGX_RPS")" "$t"
	summary "$1 p99" "$3" ms "nginx $NGX_P99 ms" "$(pct "$3" "$NGX_P99")" -
}
bench_sd() { # label, extra args...
	label=$1; shift
	SP=$(port)
	"$B/bin/service-discovery" --listen "127.0.0.1:$SP" --log-level warn "$@" &
	spid=$!
	wait_http "http://127.0.0.1:$SP/health"
	set -- $(/usr/bin/python3 bench/service-discovery-fill.py "http://127.0.0.1:$SP" "$N")
	addr=$1; cc=$2
	set -- $(run_wrk "http://127.0.0.1:$SP/api/services/$addr?type=vpn")
	report "$label GET one" "$1" "$2"
	[ -z "${RB_RPS:-}" ] || redis_ratio "$label GET one" "$1"
	set -- $(run_wrk "http://127.0.0.1:$SP/api/services?type=vpn&country=$cc&quantity=5")
	report "$label GET country, quantity=5" "$1" "$2"
	kill "$spid"; wait "$spid" 2>/dev/null || true
}
bench_sd "service-discovery (memory)"
start_redis
bench_redis_get
bench_sd "service-discovery (redis)" --redis "redis://127.0.0.1:$RP/0"
echo "targets (as discovery-http): memory >= 50% of nginx, redis >= 40% of nginx"

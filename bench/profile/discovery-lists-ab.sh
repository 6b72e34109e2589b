#!/bin/sh
# bench/profile/discovery-lists-ab: wall-clock A/B of the list rows on a busy
# machine.  Two builds of transport-discovery (and of service-discovery) run at
# once on one redis holding one fill (as bench/transport-discovery.sh and
# bench/service-discovery.sh), and wrk measures nginx, build A, build B in turn,
# ROUNDS times, so each ratio has its reference from seconds before; with each
# build's own CPU time per request (/proc/PID/stat), which a busy machine moves
# less than it moves throughput.  Not part
# of `make bench`; run it by hand (in your own network namespace):
#   sh bench/profile/discovery-lists-ab.sh BIN_DIR_A BIN_DIR_B
set -eu
. bench/lib.sh
ROUNDS=${AB_ROUNDS:-3}
A=$1 B=$2
start_redis
bench_nginx
start() { # bin-dir service: sets $SP (not in $(...): the daemon would hold its pipe open)
	SP=$(port)
	"$1/$2" --listen "127.0.0.1:$SP" --log-level warn --redis "redis://127.0.0.1:$RP/0" \
	    >>"$tmp/svc.log" 2>&1 &
	pids="$pids $!"
	wait_http "http://127.0.0.1:$SP/health"
	echo "$!" >"$tmp/pid.$SP"
}
cpu() { # port: the service's CPU time so far, in clock ticks (user + system)
	awk '{print $14 + $15}' "/proc/$(cat "$tmp/pid.$1")/stat"
}
# wrk on port's path, and the service's CPU microseconds per request: "rps p99 us/req"
wrk_cpu() {
	c0=$(cpu "$1")
	set -- "$1" $(run_wrk "http://127.0.0.1:$1$2")
	c1=$(cpu "$1")
	awk -v r="$2" -v p="$3" -v c=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -v d="${DUR%s}" \
	    'BEGIN { printf "%s %s %.1f\n", r, p, 1e6 * c / hz / (r * d) }'
}
ab() { # label path port-a port-b
	for r in $(seq "$ROUNDS"); do
		set -- "$1" "$2" "$3" "$4" $(run_wrk "http://127.0.0.1:$NP/")
		set -- "$1" "$2" "$3" "$4" "$5" "$6" $(wrk_cpu "$3" "$2")
		set -- "$@" $(wrk_cpu "$4" "$2")
		awk -v l="$1" -v r="$r" -v n="$5" -v np="$6" -v a="$7" -v ap="$8" -v ac="$9" \
		    -v b="${10}" -v bp="${11}" -v bc="${12}" -v load="$(cut -d' ' -f1 /proc/loadavg)" \
		    'BEGIN { printf "%s round %d (load %s): nginx %.0f p99 %s | A %.0f = %.0f%% p99 %s, %s CPU-us/req | B %.0f = %.0f%% p99 %s, %s CPU-us/req\n",
		        l, r, load, n, np, a, 100 * a / n, ap, ac, b, 100 * b / n, bp, bc }'
		set -- "$1" "$2" "$3" "$4"
	done
}
start "$A" transport-discovery; ta=$SP
start "$B" transport-discovery; tb=$SP
/usr/bin/python3 bench/route-finder.py fill "http://127.0.0.1:$ta" 2000 10000 "$tmp/pks" >/dev/null
set -- $(/usr/bin/python3 bench/transport-discovery-edge.py "http://127.0.0.1:$ta" "$tmp/pks")
ab "td GET edge ($2 entries)" "/transports/edge:$1" "$ta" "$tb"
start "$A" service-discovery; sa=$SP
start "$B" service-discovery; sb=$SP
set -- $(/usr/bin/python3 bench/service-discovery-fill.py "http://127.0.0.1:$sa" 5000)
ab "sd GET country=$2, quantity=5" "/api/services?type=vpn&country=$2&quantity=5" "$sa" "$sb"

# bench/lib.sh: what the benchmarks share, sourced by them (set -eu first).
# Gives: $B $DUR $CONC $THREADS, a private $tmp removed at exit with every pid
# added to $pids killed; port, wait_http, run_wrk; the references:
# bench_nginx [FILE] (sets NGX_RPS NGX_P99), bench_evhttp_fixed (sets EV_RPS
# EV_P99), start_redis (sets RP); and summary/pct for the closing table.
#
# The summary table (bench/run.sh prints it at the end of make bench): each
# figure a script measures is also printed as one machine-readable row,
#
#   SUMMARY|name|value|unit|reference|ratio|target
#
#   name       what was measured ("dmsg relay, one bulk stream")
#   value      the figure, a plain number ("384.2")
#   unit       its unit ("MB/s", "req/s", "ms", "KiB", "CPU-s/GB")
#   reference  what it is compared with, measured in the same run, with its
#              own figure ("nginx 98000 req/s"), or "-"
#   ratio      value / reference as a percentage ("61%"), or "-"
#   target     the goal: an operator, a number and "%" for a goal on the
#              ratio (">= 60%"), or a unit for a goal on the value
#              ("< 5 ms", "<= 8 KiB"), or "-"
#
# No "|" inside a field.  Use summary() below (or print the same line from
# any language); run.sh checks each target and says ok or MISS.
B=${SW_BUILD:-build}
DUR=${BENCH_DURATION:-5s}
CONC=${BENCH_CONNECTIONS:-50}
THREADS=${BENCH_THREADS:-1}
tmp=$(mktemp -d)
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() {
	i=0
	until curl -s -o /dev/null "$1"; do
		i=$((i + 1)); [ $i -lt 200 ] || { echo "bench: $1 did not come up" >&2; exit 1; }
		sleep 0.05
	done
}
# wrk URL -> "req_per_s p99_ms"; any non-2xx answer fails the benchmark.
run_wrk() {
	wrk -t"$THREADS" -c"$CONC" -d"$DUR" --latency "$1" >"$tmp/wrk.out"
	rps=$(awk '/Requests\/sec/ {print $2}' "$tmp/wrk.out")
	p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub("us","",v); v=v/1000} else if (v ~ /ms$/) {sub("ms","",v)} else if (v ~ /s$/) {sub("s","",v); v=v*1000}; print v}' "$tmp/wrk.out")
	non2xx=$(awk '/Non-2xx/ {print $4}' "$tmp/wrk.out")
	[ -z "$non2xx" ] || { echo "bench: $non2xx non-2xx answers from $1" >&2; exit 1; }
	echo "$rps ${p99:-?}"
}

# nginx returning a fixed 200: the reference every service is measured against.
# With a file argument (under $tmp), nginx serves that file instead (sendfile),
# as the reference for an answer of that size.
bench_nginx() {
	if [ -n "${1:-}" ]; then
		loc="root $tmp; location / { default_type application/json; try_files /$1 =404; }"
	else
		loc="location / { default_type application/json; return 200 '{\"ok\":true}'; }"
	fi
	NP=$(port)
	mkdir -p "$tmp/nginx"
	cat >"$tmp/nginx/nginx.conf" <<NGX
worker_processes 1;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log;
events { worker_connections 1024; }
http {
	access_log off;
	sendfile on;
	client_body_temp_path $tmp/nginx;
	proxy_temp_path $tmp/nginx;
	fastcgi_temp_path $tmp/nginx;
	uwsgi_temp_path $tmp/nginx;
	scgi_temp_path $tmp/nginx;
	server {
		listen 127.0.0.1:$NP;
		$loc
	}
}
NGX
	nginx -c "$tmp/nginx/nginx.conf" -p "$tmp/nginx" &
	pids="$pids $!"
	wait_http "http://127.0.0.1:$NP/"
	set -- $(run_wrk "http://127.0.0.1:$NP/"); NGX_RPS=$1; NGX_P99=$2
}

# bare evhttp returning a fixed body: how much of the cost is evhttp itself.
bench_evhttp_fixed() {
	cc -O2 -o "$tmp/evhttp-fixed" bench/evhttp_fixed.c $(pkg-config --cflags --libs libevent)
	EP=$(port)
	"$tmp/evhttp-fixed" "$EP" &
	pids="$pids $!"
	wait_http "http://127.0.0.1:$EP/"
	set -- $(run_wrk "http://127.0.0.1:$EP/"); EV_RPS=$1; EV_P99=$2
}

# A private redis without persistence on a free port ($RP).
start_redis() {
	RP=$(port)
	redis-server --port "$RP" --bind 127.0.0.1 --save "" --appendonly no >/dev/null &
	pids="$pids $!"
	until redis-cli -p "$RP" ping >/dev/null 2>&1; do sleep 0.05; done
}

# redis-benchmark GET on $RP at the same concurrency as wrk: the reference for
# a service on redis (issue target: >= 50% of it).  Sets RB_RPS.
bench_redis_get() {
	RB_RPS=$(redis-benchmark -p "$RP" -c "$CONC" -n 200000 -t get --csv 2>/dev/null |
	    awk -F, '$1 ~ /GET/ {gsub(/"/, "", $2); print $2}')
	printf "%-44s %12s req/s\n" "redis-benchmark GET (-c $CONC)" "$RB_RPS"
}
# ratio LABEL RPS: "NN% of redis-benchmark GET"
redis_ratio() {
	awk -v l="$1" -v r="$2" -v b="$RB_RPS" 'BEGIN {
		printf "%-44s %.0f%% of redis-benchmark GET\n", l, 100*r/b }'
}

# summary NAME VALUE UNIT REFERENCE RATIO TARGET: one row of the closing table.
summary() {
	printf 'SUMMARY|%s|%s|%s|%s|%s|%s\n' "$1" "$2" "$3" "$4" "$5" "$6"
}
# pct A B: A / B as a whole percentage ("61%"); "-" when B is empty or zero.
pct() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.0f%%\n", 100 * a / b }'
}

#!/bin/sh
# bench/service-discovery: wrk against service-discovery's GETs with 5,000
# stored vpn services (embedded store, then redis): one service by address,
# and a filtered random pick (type+country, quantity=5, which reads one
# country index and fetches 5 records).  In the same run, nginx returning a
# fixed 200 is the reference.  Prints requests/s, p99 latency and the ratio
# to nginx.  Structure as bench/discovery-http.sh.
set -eu
B=${SW_BUILD:-build}
DUR=${BENCH_DURATION:-5s}
CONC=${BENCH_CONNECTIONS:-50}
THREADS=${BENCH_THREADS:-1}
N=${BENCH_SERVICES:-5000}
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
# wrk URL -> "req_per_s p99_ms"
run_wrk() {
	wrk -t"$THREADS" -c"$CONC" -d"$DUR" --latency "$1" >"$tmp/wrk.out"
	rps=$(awk '/Requests\/sec/ {print $2}' "$tmp/wrk.out")
	p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub("us","",v); v=v/1000} else if (v ~ /ms$/) {sub("ms","",v)} else if (v ~ /s$/) {sub("s","",v); v=v*1000}; print v}' "$tmp/wrk.out")
	non2xx=$(awk '/Non-2xx/ {print $4}' "$tmp/wrk.out")
	[ -z "$non2xx" ] || { echo "bench: $non2xx non-2xx answers from $1" >&2; exit 1; }
	echo "$rps ${p99:-?}"
}

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
	client_body_temp_path $tmp/nginx;
	proxy_temp_path $tmp/nginx;
	fastcgi_temp_path $tmp/nginx;
	uwsgi_temp_path $tmp/nginx;
	scgi_temp_path $tmp/nginx;
	server {
		listen 127.0.0.1:$NP;
		location / { default_type application/json; return 200 '{"ok":true}'; }
	}
}
NGX
nginx -c "$tmp/nginx/nginx.conf" -p "$tmp/nginx" &
pids="$pids $!"
wait_http "http://127.0.0.1:$NP/"
set -- $(run_wrk "http://127.0.0.1:$NP/"); NGX_RPS=$1; NGX_P99=$2
printf "%-50s %12s req/s  p99 %8s ms\n" "nginx fixed 200" "$NGX_RPS" "$NGX_P99"

report() { # label rps p99
	awk -v l="$1" -v r="$2" -v p="$3" -v n="$NGX_RPS" 'BEGIN {
		printf "%-50s %12s req/s  p99 %8s ms   %.0f%% of nginx\n", l, r, p, 100*r/n }'
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
	set -- $(run_wrk "http://127.0.0.1:$SP/api/services?type=vpn&country=$cc&quantity=5")
	report "$label GET country, quantity=5" "$1" "$2"
	kill "$spid"; wait "$spid" 2>/dev/null || true
}
bench_sd "service-discovery (memory)"
RP=$(port)
redis-server --port "$RP" --bind 127.0.0.1 --save "" --appendonly no >/dev/null &
pids="$pids $!"
until redis-cli -p "$RP" ping >/dev/null 2>&1; do sleep 0.05; done
bench_sd "service-discovery (redis)" --redis "redis://127.0.0.1:$RP/0"
echo "targets (as discovery-http): memory >= 50% of nginx, redis >= 40% of nginx"

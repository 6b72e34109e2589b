#!/bin/sh
# bench/discovery-http: wrk against GET /dmsg-discovery/entry/{pk} with 10,000
# stored entries (embedded store, then redis), and in the same run against
# nginx returning a fixed 200 and a bare evhttp server returning a fixed body.
# Prints requests/s, p99 latency and the ratios to the two references.
# Targets: >= 50% of nginx in memory, >= 40% with redis.
set -eu
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
# wrk URL -> "req_per_s p99_ms"
run_wrk() {
	wrk -t"$THREADS" -c"$CONC" -d"$DUR" --latency "$1" >"$tmp/wrk.out"
	rps=$(awk '/Requests\/sec/ {print $2}' "$tmp/wrk.out")
	p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub("us","",v); v=v/1000} else if (v ~ /ms$/) {sub("ms","",v)} else if (v ~ /s$/) {sub("s","",v); v=v*1000}; print v}' "$tmp/wrk.out")
	echo "$rps ${p99:-?}"
}

cc -O2 -o "$tmp/evhttp-fixed" bench/evhttp_fixed.c $(pkg-config --cflags --libs libevent)

# nginx: a fixed 200.
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
EP=$(port)
"$tmp/evhttp-fixed" "$EP" &
pids="$pids $!"
wait_http "http://127.0.0.1:$NP/"
wait_http "http://127.0.0.1:$EP/"
set -- $(run_wrk "http://127.0.0.1:$NP/"); NGX_RPS=$1; NGX_P99=$2
set -- $(run_wrk "http://127.0.0.1:$EP/"); EV_RPS=$1; EV_P99=$2
printf "%-28s %12s req/s  p99 %8s ms\n" "nginx fixed 200" "$NGX_RPS" "$NGX_P99"
printf "%-28s %12s req/s  p99 %8s ms\n" "bare evhttp fixed body" "$EV_RPS" "$EV_P99"

bench_dd() { # label, extra args...
	label=$1; shift
	DP=$(port)
	"$B/bin/dmsg-discovery" --listen "127.0.0.1:$DP" --log-level warn "$@" &
	dpid=$!
	wait_http "http://127.0.0.1:$DP/health"
	pk=$(/usr/bin/python3 bench/fill_entries.py "http://127.0.0.1:$DP" 10000)
	set -- $(run_wrk "http://127.0.0.1:$DP/dmsg-discovery/entry/$pk")
	kill "$dpid"; wait "$dpid" 2>/dev/null || true
	awk -v l="$label" -v r="$1" -v p="$2" -v n="$NGX_RPS" -v e="$EV_RPS" 'BEGIN {
		printf "%-28s %12s req/s  p99 %8s ms   %.0f%% of nginx, %.0f%% of bare evhttp\n",
		    l, r, p, 100*r/n, 100*r/e }'
}
bench_dd "dmsg-discovery (memory)"
RP=$(port)
redis-server --port "$RP" --bind 127.0.0.1 --save "" --appendonly no >/dev/null &
pids="$pids $!"
until redis-cli -p "$RP" ping >/dev/null 2>&1; do sleep 0.05; done
bench_dd "dmsg-discovery (redis)" --redis "redis://127.0.0.1:$RP/0"
echo "targets: memory >= 50% of nginx, redis >= 40% of nginx"

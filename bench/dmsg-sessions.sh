#!/bin/sh
# bench/dmsg-sessions: N idle sessions (default 2000) on one dmsg-server:
# the server's RSS growth per session (target < 8 KiB) and the handshake rate.
set -eu
B=${SW_BUILD:-build}
N=${BENCH_SESSIONS:-2000}
tmp=$(mktemp -d)
pids=""
cleanup() {
	exec 3>&- 2>/dev/null || true
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

ulimit -n $((N * 2 + 256)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"
cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Icommon -o "$tmp/dmsg-load" \
	bench/dmsg-load.c "$B/libswcommon.a" $(pkg-config --cflags --libs libevent libsodium libcjson) -lm

SP=$(port); HP=$(port)
set -- $("$tmp/dmsg-load" keygen)
SEED=$1; SPK=$2
"$B/bin/dmsg-server" --secret-key "$SEED" --listen 127.0.0.1:$SP --health-listen 127.0.0.1:$HP --log-level warn \
	--max-sessions $((N + 100)) >"$tmp/server.log" 2>&1 &
spid=$!
pids="$pids $spid"
i=0
until curl -s -o /dev/null "http://127.0.0.1:$HP/health"; do
	i=$((i + 1)); [ $i -lt 200 ] || { echo "bench: dmsg-server did not come up" >&2; exit 1; }
	sleep 0.05
done
# Warm the server's one-time allocations (scratch, HTTP, metrics) with a few sessions first.
mkfifo "$tmp/in"
"$tmp/dmsg-load" sessions "$SP" "$SPK" 20 <"$tmp/in" >"$tmp/warm.out" &
pids="$pids $!"
exec 3>"$tmp/in"
i=0
until grep -q '^ready' "$tmp/warm.out" 2>/dev/null; do
	i=$((i + 1)); [ $i -lt 600 ] || { echo "bench: warm-up failed" >&2; exit 1; }
	sleep 0.05
done
before=$(rss_kb $spid)
mkfifo "$tmp/in2"
"$tmp/dmsg-load" sessions "$SP" "$SPK" "$N" <"$tmp/in2" >"$tmp/load.out" &
pids="$pids $!"
exec 4>"$tmp/in2"
i=0
until grep -q '^ready' "$tmp/load.out" 2>/dev/null; do
	i=$((i + 1)); [ $i -lt 1200 ] || { echo "bench: sessions did not come up" >&2; exit 1; }
	sleep 0.05
done
sleep 1
after=$(rss_kb $spid)
n=$(curl -s "http://127.0.0.1:$HP/metrics" | awk '/^dmsg_server_sessions/ {print $2}')
rate=$(awk '/handshakes_per_s/ {print $2}' "$tmp/load.out")
awk -v b="$before" -v a="$after" -v n="$N" -v s="$n" -v r="$rate" 'BEGIN {
	printf "sessions on the server: %d\n", s
	printf "server RSS %d KiB -> %d KiB: %.2f KiB per idle session (target < 8 KiB)\n", b, a, (a - b) / n
	printf "handshakes: %s per second (one client process)\n", r
}'
exec 3>&- 4>&-

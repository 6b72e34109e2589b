#!/bin/sh
# bench/dmsg-throughput: one stream of bulk DATA through a dmsg-server
# (sender and receiver in two processes, the server in a third), against
# plain TCP echo and the raw ChaCha20-Poly1305 rate measured in the same run.
# The relay decrypts and re-encrypts every byte, so its ceiling is about
# half the AEAD rate; the ratio printed is relay / min(TCP echo, AEAD / 2).
# Target: >= 60%.
set -eu
B=${SW_BUILD:-build}
BYTES=${BENCH_BYTES:-1000000000}
tmp=$(mktemp -d)
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Icommon -o "$tmp/dmsg-load" \
	bench/dmsg-load.c "$B/libswcommon.a" $(pkg-config --cflags --libs libevent libsodium libcjson) -lm

SP=$(port); HP=$(port)
set -- $("$tmp/dmsg-load" keygen)
SEED=$1; SPK=$2
"$B/bin/dmsg-server" --secret-key "$SEED" --listen 127.0.0.1:$SP --health-listen 127.0.0.1:$HP --log-level warn \
	>"$tmp/server.log" 2>&1 &
pids="$pids $!"
i=0
until curl -s -o /dev/null "http://127.0.0.1:$HP/health"; do
	i=$((i + 1)); [ $i -lt 200 ] || { echo "bench: dmsg-server did not come up" >&2; cat "$tmp/server.log"; exit 1; }
	sleep 0.05
done

aead=$("$tmp/dmsg-load" aead | awk '{print $2}')
tcp=$("$tmp/dmsg-load" tcp "$BYTES" | awk '{print $2}')
relay=$("$tmp/dmsg-load" relay "$SP" "$SPK" "$BYTES" | awk '/relay_mbps/ {print $2}')
awk -v a="$aead" -v t="$tcp" -v r="$relay" 'BEGIN {
	ref = t < a / 2 ? t : a / 2
	printf "dmsg relay        %8.1f MB/s\n", r
	printf "plain TCP echo    %8.1f MB/s\n", t
	printf "ChaCha20-Poly1305 %8.1f MB/s (one core; relay ceiling ~%.1f)\n", a, a / 2
	printf "ratio relay / min(tcp, aead/2) = %.0f%% (target >= 60%%)\n", 100 * r / ref
}'

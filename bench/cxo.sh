#!/bin/sh
# bench/cxo: dmsg-discovery with 10,000 client entries over 10 servers; the
# clients-by-server data read as a CXO snapshot and one CXO update, against
# HTTP GET of the same lists (bench/cxo_bench.py).  Prints time, bytes and
# the HTTP/CXO ratios.  BENCH_CXO_N sets the number of entries.
set -eu
B=${SW_BUILD:-build}
N=${BENCH_CXO_N:-10000}
tmp=$(mktemp -d)
pid=""
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
keys=$(/usr/bin/python3 -c 'import nacl.signing, os; k=nacl.signing.SigningKey(os.urandom(32)); print(bytes(k).hex(), k.verify_key.encode().hex())')
seed=${keys% *}
pk=${keys#* }
HP=$(port)
CP=$(port)
"$B/bin/dmsg-discovery" --listen "127.0.0.1:$HP" --cxo-tcp-addr "127.0.0.1:$CP" \
	--secret-key "$seed" --log-level warn --entry-timeout-s 3600 >"$tmp/dd.log" 2>&1 &
pid=$!
i=0
until curl -s -o /dev/null "http://127.0.0.1:$HP/health"; do
	i=$((i + 1)); [ $i -lt 200 ] || { echo "bench: dmsg-discovery did not come up" >&2; exit 1; }
	sleep 0.05
done
/usr/bin/python3 bench/cxo_bench.py "http://127.0.0.1:$HP" "127.0.0.1:$CP" "$pk" "$N" 10

#!/bin/sh
# bench/cxo-c: the clients-by-server feed read by the project's own C
# subscriber (bench/cxo_sub_bench.c on common/cxo_sub) for 10,000 and
# 100,000 client entries over 10 servers: snapshot time and object bytes,
# the HTTP GETs of the same lists in the same run (the reference), and the
# latency from a committed write (its 200) to the subscriber's update
# callback.  Target: snapshot <= 2x the HTTP list time.  BENCH_CXO_SIZES
# sets the sizes.
set -eu
. bench/lib.sh
SIZES=${BENCH_CXO_SIZES:-10000 100000}
cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -I. -Icommon \
    -o "$tmp/cxo_sub_bench" bench/cxo_sub_bench.c "$B/libswcommon.a" \
    $(pkg-config --cflags --libs libevent libcjson hiredis libsodium) -lm
for n in $SIZES; do
	keys=$(/usr/bin/python3 -c 'import nacl.signing, os; k=nacl.signing.SigningKey(os.urandom(32)); print(bytes(k).hex(), k.verify_key.encode().hex())')
	HP=$(port); CP=$(port)
	"$B/bin/dmsg-discovery" --listen "127.0.0.1:$HP" --cxo-tcp-addr "127.0.0.1:$CP" \
	    --secret-key "${keys% *}" --log-level warn --entry-timeout-s 3600 \
	    --cxo-queue-max 1000000 >"$tmp/dd.log" 2>&1 &
	dpid=$!
	wait_http "http://127.0.0.1:$HP/health"
	echo "-- $n entries"
	"$tmp/cxo_sub_bench" "http://127.0.0.1:$HP" "127.0.0.1:$CP" "${keys#* }" "$n" 10 |
	    tee "$tmp/out" | grep -v '^RESULT'
	set -- $(awk '$1 == "RESULT" {print $2, $3, $4, $5, $6}' "$tmp/out")
	summary "CXO snapshot, C subscriber ($n entries)" "$1" ms "HTTP lists $2 ms" \
	    "$(awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx\n", a / b }')" "<= 2x"
	summary "CXO snapshot bytes ($n entries)" "$3" B "HTTP lists $4 B" "$(pct "$3" "$4")" -
	summary "CXO committed write -> update callback ($n entries)" "$5" ms - - -
	kill "$dpid"; wait "$dpid" 2>/dev/null || true
done

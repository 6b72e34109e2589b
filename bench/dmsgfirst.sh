#!/bin/sh
# bench/dmsgfirst: a request's latency over HTTP-over-dmsg vs plain TCP on
# loopback, through a real dmsg-discovery and dmsg-server (bench/dmsgfirst.c).
# Each request is a fresh connection, as the visor makes them: over dmsg a
# stream dial and its Noise KK handshake through the relay.  Prints the ratio.
set -eu
. bench/lib.sh
N=${BENCH_DMSGFIRST_REQUESTS:-300}
cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Icommon -o "$tmp/dmsgfirst" \
	bench/dmsgfirst.c "$B/libswcommon.a" \
	$(pkg-config --cflags --libs libevent libsodium libcjson hiredis) -lm
DP=$(port); SP=$(port); SH=$(port)
"$B/bin/dmsg-discovery" --listen "127.0.0.1:$DP" --log-level warn &
pids="$pids $!"
wait_http "http://127.0.0.1:$DP/health"
"$B/bin/dmsg-server" --listen "127.0.0.1:$SP" --health-listen "127.0.0.1:$SH" \
    --discovery "http://127.0.0.1:$DP" --log-level warn &
pids="$pids $!"
wait_http "http://127.0.0.1:$SH/health"
"$tmp/dmsgfirst" "http://127.0.0.1:$DP" "$N"

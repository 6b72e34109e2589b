# bench/dmsg-lib.sh: what the dmsg benchmarks share, sourced after
# bench/lib.sh.  build_dmsg_load compiles the load generator ($LOAD);
# start_dmsg_server [ARGS] starts a dmsg-server on free ports with a fresh key
# (sets SP HP SPK SPID) and waits for its /health; cpu_ticks PID is the
# process's user+system CPU in clock ticks ($HZ per second); rss_kb PID.
HZ=$(getconf CLK_TCK)

build_dmsg_load() {
	LOAD=$tmp/dmsg-load
	cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Icommon -o "$LOAD" \
		bench/dmsg-load.c "$B/libswcommon.a" \
		$(pkg-config --cflags --libs libevent libsodium libcjson) -lm
}

start_dmsg_server() {
	SP=$(port); HP=$(port)
	set -- $("$LOAD" keygen) "$@"
	seed=$1; SPK=$2; shift 2
	"$B/bin/dmsg-server" --secret-key "$seed" --listen "127.0.0.1:$SP" \
		--health-listen "127.0.0.1:$HP" --log-level warn "$@" >"$tmp/server.log" 2>&1 &
	SPID=$!
	pids="$pids $SPID"
	wait_http "http://127.0.0.1:$HP/health"
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
# The server's session gauge from /metrics.
server_sessions() {
	curl -s "http://127.0.0.1:$HP/metrics" | awk '/^dmsg_server_sessions[ {]/ {print $2}'
}

#!/bin/sh
# bench/dmsg-sessions: sessions on one dmsg-server.
#  1. N idle sessions (default 10,000): the server's RSS growth per session
#     (target < 8 KiB) and the handshake rate.
#  2. Churn: ROUNDS times (default 4) M sessions (default 5,000) come and go;
#     the server's RSS after each round, once it has seen every session end.
#     Memory must come back (#11 item 12): the last round's RSS at most 2 MiB
#     above the first's.
set -eu
. bench/lib.sh
. bench/dmsg-lib.sh
N=${BENCH_SESSIONS:-10000}
M=${BENCH_CHURN_SESSIONS:-5000}
ROUNDS=${BENCH_CHURN_ROUNDS:-4}

ulimit -n $(( (N > M ? N : M) * 2 + 256)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"
build_dmsg_load
# Wait (bounded) until the server holds exactly $1 sessions.
wait_sessions() {
	i=0
	until [ "$(server_sessions)" = "$1" ]; do
		i=$((i + 1)); [ $i -lt 1200 ] || { echo "bench: server holds $(server_sessions) sessions, want $1" >&2; exit 1; }
		sleep 0.05
	done
}

# 1: idle sessions.
start_dmsg_server --max-sessions $((N + 100))
before=$(rss_kb "$SPID")
mkfifo "$tmp/in"
"$LOAD" sessions "$SP" "$SPK" "$N" <"$tmp/in" >"$tmp/load.out" &
pids="$pids $!"
exec 4>"$tmp/in"
i=0
until grep -q '^ready' "$tmp/load.out" 2>/dev/null; do
	i=$((i + 1)); [ $i -lt 2400 ] || { echo "bench: sessions did not come up" >&2; exit 1; }
	sleep 0.05
done
wait_sessions "$N"
after=$(rss_kb "$SPID")
rate=$(awk '/handshakes_per_s/ {print $2}' "$tmp/load.out")
awk -v b="$before" -v a="$after" -v n="$N" -v r="$rate" 'BEGIN {
	printf "sessions on the server: %d\n", n
	printf "server RSS %d KiB -> %d KiB: %.2f KiB per idle session (target < 8 KiB)\n", b, a, (a - b) / n
	printf "handshakes: %s per second (one client process)\n", r
	printf "SUMMARY|dmsg-server RSS per idle session (%d sessions)|%.2f|KiB|-|-|< 8 KiB\n", n, (a - b) / n
	printf "SUMMARY|dmsg-server RSS with %d idle sessions|%d|KiB|-|-|-\n", n, a
	printf "SUMMARY|dmsg handshakes per second (one client process)|%s|1/s|-|-|-\n", r
}'
exec 4>&-
kill "$SPID"

# 2, on a fresh server: what a long-running server sees.
start_dmsg_server --max-sessions $((M + 100))
mkfifo "$tmp/churn.in"
"$LOAD" churn "$SP" "$SPK" "$M" "$ROUNDS" <"$tmp/churn.in" >"$tmp/churn.out" &
pids="$pids $!"
exec 3>"$tmp/churn.in"
start_rss=$(rss_kb "$SPID")
printf "churn: %d sessions up then closed, %d rounds; server RSS (start %d KiB):\n" "$M" "$ROUNDS" "$start_rss"
r=0
while [ "$r" -lt "$ROUNDS" ]; do
	r=$((r + 1))
	i=0
	until grep -q "^up $r\$" "$tmp/churn.out" 2>/dev/null; do
		i=$((i + 1)); [ $i -lt 2400 ] || { echo "bench: round $r did not come up" >&2; exit 1; }
		sleep 0.05
	done
	wait_sessions "$M"
	up=$(rss_kb "$SPID")
	echo go >&3
	until grep -q "^down $r\$" "$tmp/churn.out" 2>/dev/null; do sleep 0.05; done
	wait_sessions 0
	# The server gives memory back on a timer after a drop: let it run.
	sleep 1.5
	down=$(rss_kb "$SPID")
	[ "$r" -eq 1 ] && first=$down
	printf "  round %d: %6d KiB with %d sessions, %6d KiB after they left\n" "$r" "$up" "$M" "$down"
	echo go >&3
done
exec 3>&-
grow=$(( (down - first) ))
echo "RSS growth from round 1 to round $ROUNDS after the sessions left: $grow KiB (target <= 2048)"
summary "dmsg-server RSS after $M sessions left, round $ROUNDS" "$down" KiB \
	"round 1 $first KiB" "$(pct "$down" "$first")" "<= $((first + 2048)) KiB"
summary "dmsg-server RSS growth, round 1 to $ROUNDS of $M sessions" "$grow" KiB \
	"round 1 $first KiB" "-" "<= 2048 KiB"


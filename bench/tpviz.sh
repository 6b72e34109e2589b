#!/bin/sh
# bench/tpviz: tpviz with 10,000 visors and 50,000 transports in the
# all-transports feed (transport-discovery publishing over dmsg through a
# real dmsg-discovery and dmsg-server).  Measures:
#   - GET /api/transports (answered from the rendered snapshot) with wrk,
#     against nginx serving a static file of the very same bytes: the ratio
#     (target >= 50 %);
#   - the page's first render in headless Chromium (target < 2 s): from
#     navigation start until the graph is drawn and painted, fetching and
#     parsing included; the median of 3 fresh browsers, with an empty
#     page's in the same run as the reference (Chromium's own share), and
#     the CPU time Chromium spent, which the machine's load hardly changes;
#   - tpviz's RSS.
set -eu
. bench/lib.sh
NV=${BENCH_TPVIZ_VISORS:-10000}
NT=${BENCH_TPVIZ_TRANSPORTS:-50000}
CONC=${BENCH_TPVIZ_CONNECTIONS:-8}

DP=$(port); SP=$(port); SH=$(port); TP=$(port); VP=$(port)
TDK=$(/usr/bin/python3 -c 'import os; print(os.urandom(32).hex())')
"$B/bin/dmsg-discovery" --listen "127.0.0.1:$DP" --log-level warn &
pids="$pids $!"
wait_http "http://127.0.0.1:$DP/health"
"$B/bin/dmsg-server" --listen "127.0.0.1:$SP" --health-listen "127.0.0.1:$SH" \
    --discovery "http://127.0.0.1:$DP" --log-level warn &
pids="$pids $!"
wait_http "http://127.0.0.1:$SH/health"
"$B/bin/transport-discovery" --listen "127.0.0.1:$TP" --log-level warn --secret-key "$TDK" \
    --dmsg-discovery "http://127.0.0.1:$DP" &
pids="$pids $!"
wait_http "http://127.0.0.1:$TP/health"
TDPK=$(/usr/bin/python3 -c "import sys; sys.path.insert(0, 'tests/py'); from swclient import Key; print(Key(bytes.fromhex('$TDK')).pk)")
/usr/bin/python3 bench/route-finder.py fill "http://127.0.0.1:$TP" "$NV" "$NT" "$tmp/pks" >/dev/null
"$B/bin/tpviz" --listen "127.0.0.1:$VP" --log-level warn --dmsg-discovery "http://127.0.0.1:$DP" \
    --transport-discovery "http://127.0.0.1:$TP" --transport-discovery-pk "$TDPK" &
tvpid=$!
pids="$pids $tvpid"
wait_http "http://127.0.0.1:$VP/api/transports"
/usr/bin/python3 bench/tpviz_render.py ready "http://127.0.0.1:$VP" "$NT"
curl -s "http://127.0.0.1:$VP/api/transports" >"$tmp/body.json"
size=$(wc -c <"$tmp/body.json")
# nginx's workers run as nobody: let them read the body.
chmod 755 "$tmp"; chmod 644 "$tmp/body.json"

# nginx serving the same bytes from a file (sendfile): the reference.
bench_nginx body.json
set -- $(run_wrk "http://127.0.0.1:$VP/api/transports"); TV_RPS=$1; TV_P99=$2
rss=$(awk '/VmRSS/ {print $2}' "/proc/$tvpid/status")
printf "%-44s %d bytes, %d visors, %d transports\n" "tpviz /api/transports body" "$size" "$NV" "$NT"
printf "%-44s %12s req/s  p99 %8s ms\n" "nginx, the same body from a file" "$NGX_RPS" "$NGX_P99"
awk -v r="$TV_RPS" -v p="$TV_P99" -v n="$NGX_RPS" 'BEGIN {
	printf "%-44s %12s req/s  p99 %8s ms   %.0f%% of nginx (target >= 50%%)\n",
	    "tpviz GET /api/transports", r, p, 100*r/n }'
printf "%-44s %12d KiB\n" "tpviz RSS" "$rss"
summary "tpviz GET /api/transports (50k transports)" "$TV_RPS" "req/s" \
    "nginx same body $NGX_RPS req/s" "$(pct "$TV_RPS" "$NGX_RPS")" ">= 50%"
summary "tpviz RSS (10k visors, 50k transports)" "$rss" "KiB" "-" "-" "-"
if command -v chromium >/dev/null 2>&1; then
	# Each figure the median of 3 fresh browsers; Chromium's own share (an
	# empty page, same flags) is the reference.  The CPU figure is all of
	# Chromium's processes, which the machine's load hardly changes.
	set -- $(/usr/bin/python3 bench/tpviz_render.py empty 3); EMPTY_MS=$1; EMPTY_CPU=$2
	set -- $(/usr/bin/python3 bench/tpviz_render.py render "http://127.0.0.1:$VP")
	printf "%-44s %12s ms   (%s visors, %s transports drawn; target < 2000 ms)\n" \
	    "tpviz page first render (headless Chromium)" "$1" "$2" "$3"
	printf "%-44s %12s ms   CPU, all Chromium processes\n" "" "$4"
	printf "%-44s %12s ms   (CPU %s ms)\n" "an empty page in the same browser" "$EMPTY_MS" "$EMPTY_CPU"
	summary "tpviz page first render (headless Chromium)" "$1" "ms" \
	    "empty page $EMPTY_MS ms" "$(pct "$1" "$EMPTY_MS")" "< 2000 ms"
	summary "tpviz page first render, Chromium CPU" "$4" "ms" \
	    "empty page $EMPTY_CPU ms" "$(pct "$4" "$EMPTY_CPU")" "-"
else
	echo "tpviz page first render: SKIPPED, chromium not installed (make deps)"
fi

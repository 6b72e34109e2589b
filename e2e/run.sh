#!/bin/sh
# make e2e-run: start the deployment in the background and wait until it is
# healthy.  E2E_MODE=one (default): skywire-svc runs every instance in one
# process and its shared /health must be 200.  E2E_MODE=split: each instance
# runs as its own executable (-c deployment --name NAME), as compose does,
# and each one's own /health must be 200.  E2E_DIR holds pids and logs.
set -eu
config=${1:-compose/deployment.json}
bin=${SW_BUILD:-build}/bin
dir=${E2E_DIR:-.e2e}
mode=${E2E_MODE:-one}
health=${E2E_HEALTH:-http://127.0.0.1:9100}/health
mkdir -p "$dir"
if [ "$mode" = compose ]; then
	rm -f "$dir"/*.log
	echo compose >"$dir/mode"
	exec sh e2e/compose.sh up
fi
if [ -f "$dir/pids" ] && [ -s "$dir/pids" ]; then
	for p in $(cat "$dir/pids"); do
		if kill -0 "$p" 2>/dev/null; then
			echo "e2e: already running (pid $p); make e2e-stop first" >&2
			exit 1
		fi
	done
fi
rm -f "$dir"/*.log
: >"$dir/pids"
echo "$mode" >"$dir/mode"
start=$(date +%s%N)
# A deployment on redis gets its own redis-server (no persistence), unless
# one already answers there.
set -- $(/usr/bin/python3 e2e/redis_url.py "$config")
if [ $# -eq 2 ] && ! redis-cli -h "$1" -p "$2" ping >/dev/null 2>&1; then
	redis-server --bind "$1" --port "$2" --save "" --appendonly no >"$dir/redis.log" 2>&1 &
	echo $! >>"$dir/pids"
	i=0
	until redis-cli -h "$1" -p "$2" ping >/dev/null 2>&1; do
		i=$((i + 1))
		[ "$i" -lt 200 ] || { echo "e2e: redis did not start" >&2; exit 1; }
		sleep 0.05
	done
fi
urls=""
if [ "$mode" = split ]; then
	/usr/bin/python3 e2e/instances.py "$config" >"$dir/instances"
	while read -r type name url; do
		"$bin/$type" -c "$config" --name "$name" >"$dir/$name.log" 2>&1 &
		echo $! >>"$dir/pids"
		[ "$url" = - ] || urls="$urls $url"
	done <"$dir/instances"
else
	"$bin/skywire-svc" run --config "$config" >"$dir/deployment.log" 2>&1 &
	echo $! >>"$dir/pids"
	urls=$health
fi
# Poll readiness with a deadline of 20 s, every 10 ms, one request a poll
# (the deployment is ready in ~100 ms: a coarser poll would be most of the
# figure).  Two times are printed: when /health first answers (any status),
# and when it is 200 (every check ok).
first=""
deadline=$(( $(date +%s) + 20 ))
for url in $urls; do
	while :; do
		code=$(curl -s -o /dev/null -w '%{http_code}' "$url" 2>/dev/null || true)
		[ "$code" != 200 ] || break
		if [ -z "$first" ] && [ "$code" != 000 ]; then
			first=$(date +%s%N)
		fi
		for p in $(cat "$dir/pids"); do
			if ! kill -0 "$p" 2>/dev/null; then
				echo "e2e: a process exited; logs:" >&2
				tail -n 30 "$dir"/*.log >&2
				exit 1
			fi
		done
		if [ "$(date +%s)" -ge "$deadline" ]; then
			echo "e2e: $url not 200 after 20 s; logs:" >&2
			tail -n 30 "$dir"/*.log >&2
			exit 1
		fi
		sleep 0.01
	done
done
end=$(date +%s%N)
first=${first:-$end}
echo "e2e: deployment ($mode) /health answered in $(( (first - start) / 1000000 )) ms," \
	"every check ok in $(( (end - start) / 1000000 )) ms, pids $(tr '\n' ' ' <"$dir/pids"), logs in $dir/"

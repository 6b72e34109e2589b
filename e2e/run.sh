#!/bin/sh
# make e2e-run: start the deployment in the background and wait for /health.
# E2E_DIR holds the pid and the log; E2E_MODE=split is not yet supported.
set -eu
config=${1:-compose/deployment.json}
bin=${SW_BUILD:-build}/bin
dir=${E2E_DIR:-.e2e}
health=${E2E_HEALTH:-http://127.0.0.1:9100/health}
mkdir -p "$dir"
if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
	echo "e2e: already running (pid $(cat "$dir/pid")); make e2e-stop first" >&2
	exit 1
fi
start=$(date +%s%N)
"$bin/skywire-svc" run --config "$config" >"$dir/deployment.log" 2>&1 &
echo $! >"$dir/pid"
# Poll /health: readiness is what we wait for, with a deadline of 20 s.
i=0
until curl -fsS -o /dev/null "$health" 2>/dev/null; do
	if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
		echo "e2e: deployment exited; log:" >&2
		cat "$dir/deployment.log" >&2
		exit 1
	fi
	i=$((i + 1))
	if [ "$i" -gt 400 ]; then
		echo "e2e: /health not 200 after 20 s; log:" >&2
		tail -n 50 "$dir/deployment.log" >&2
		exit 1
	fi
	sleep 0.05
done
end=$(date +%s%N)
echo "e2e: deployment healthy in $(( (end - start) / 1000000 )) ms (pid $(cat "$dir/pid"), log $dir/deployment.log)"

#!/bin/sh
# make e2e-stop: SIGTERM every process of the deployment and wait for each
# graceful exit (15 s, then SIGKILL).
dir=${E2E_DIR:-.e2e}
if [ "$(cat "$dir/mode" 2>/dev/null)" = compose ]; then
	sh e2e/compose.sh down
	rm -f "$dir/mode"
	echo "e2e: stopped"
	exit 0
fi
[ -f "$dir/pids" ] || { echo "e2e: not running"; exit 0; }
# Services first, redis (listed first) last, so nothing loses its store mid-stop.
for pid in $(tac "$dir/pids"); do
	kill -TERM "$pid" 2>/dev/null
done
for pid in $(tac "$dir/pids"); do
	i=0
	while kill -0 "$pid" 2>/dev/null; do
		i=$((i + 1))
		if [ "$i" -gt 300 ]; then
			echo "e2e: $pid still running after 15 s, killing" >&2
			kill -KILL "$pid" 2>/dev/null
			break
		fi
		sleep 0.05
	done
done
rm -f "$dir/pids"
echo "e2e: stopped"
# Under SAN=1 a sanitizer report in any process's log fails the run.
if grep -lE "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" "$dir"/*.log 2>/dev/null; then
	echo "e2e: sanitizer reports in the logs above" >&2
	exit 1
fi

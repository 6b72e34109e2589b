#!/bin/sh
# make e2e-stop: SIGTERM the deployment and wait for its graceful exit.
dir=${E2E_DIR:-.e2e}
[ -f "$dir/pid" ] || { echo "e2e: not running"; exit 0; }
pid=$(cat "$dir/pid")
if kill -TERM "$pid" 2>/dev/null; then
	i=0
	while kill -0 "$pid" 2>/dev/null; do
		i=$((i + 1))
		if [ "$i" -gt 300 ]; then
			echo "e2e: still running after 15 s, killing" >&2
			kill -KILL "$pid" 2>/dev/null
			break
		fi
		sleep 0.05
	done
fi
rm -f "$dir/pid"
echo "e2e: stopped"

#!/bin/sh
# make e2e-test: run every scenario in e2e/scenarios against the running
# deployment (E2E_* variables say where it is).  A scenario is an executable
# file named for what a user does; it exits 0 on success.
set -u
export E2E_CONFIG=${1:-compose/deployment.json}
export SW_BUILD=${SW_BUILD:-build}
export E2E_DD=${E2E_DD:-http://127.0.0.1:9090}
export E2E_HEALTH=${E2E_HEALTH:-http://127.0.0.1:9100}
export E2E_MODE=$(cat "${E2E_DIR:-.e2e}/mode" 2>/dev/null || echo one)
pass=0
fail=0
skip=0
# compose: the scenarios run in the deployment's e2e runner container, then
# the compose-only ones (e2e/compose/*.py: restart, kill, scale) on the host.
run_one() {
	if [ "$E2E_MODE" = compose ]; then
		case "$1" in
		e2e/compose/*) /usr/bin/python3 "$1" ;;
		*) sh e2e/compose.sh scenario "$1" ;;
		esac
	else
		"$1"
	fi
}
list=$(ls e2e/scenarios/*)
[ "$E2E_MODE" != compose ] || list="$list $(ls e2e/compose/*.py 2>/dev/null | grep -v '_lib.py$')"
for s in $list; do
	[ -x "$s" ] || continue
	name=$(basename "$s")
	run_one "$s" >"${E2E_DIR:-.e2e}/$name.log" 2>&1
	rc=$?
	# 77: the scenario cannot run in this mode; it says why, loudly.
	if [ "$rc" -eq 77 ]; then
		skip=$((skip + 1))
		echo "SKIP e2e/$name: $(tail -n 1 "${E2E_DIR:-.e2e}/$name.log")"
		continue
	fi
	if [ "$rc" -eq 0 ]; then
		pass=$((pass + 1))
		echo "ok   e2e/$name"
	else
		fail=$((fail + 1))
		echo "FAIL e2e/$name"
		sed 's/^/    /' "${E2E_DIR:-.e2e}/$name.log" | tail -n 30
	fi
done
echo "e2e: $pass passed, $fail failed, $skip skipped"
[ -z "${SW_TALLY:-}" ] || echo "$pass $fail" >>"$SW_TALLY"
[ "$fail" -eq 0 ]

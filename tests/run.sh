#!/bin/sh
# Run every test binary given; print each result and a closing tally line.
# Exit non-zero if any failed.
pass=0
fail=0
failed=""
for t in "$@"; do
	name=${t#"$SW_BUILD"/tests/}
	case "$t" in
	*.py) log=$SW_BUILD/tests/$(echo "$t" | tr / _).log; cmd="/usr/bin/python3 $t" ;;
	*) log=$t.log; cmd=$t ;;
	esac
	name=${name#tests/}
	# A hung test fails on its own deadline instead of stalling CI.
	if timeout -k 10 "${SW_TEST_TIMEOUT:-600}" $cmd >"$log" 2>&1; then
		pass=$((pass + 1))
		echo "ok   $name"
	else
		fail=$((fail + 1))
		failed="$failed $name"
		echo "FAIL $name (log: $log)"
		tail -n 40 "$log" | sed 's/^/    /'
	fi
done
echo "unit: $pass passed, $fail failed"
[ -z "${SW_TALLY:-}" ] || echo "$pass $fail" >>"$SW_TALLY"
[ "$fail" -eq 0 ] || { echo "failed:$failed"; exit 1; }

#!/bin/sh
# Run every test binary given; print each result and a closing tally line.
# Exit non-zero if any failed.
pass=0
fail=0
failed=""
for t in "$@"; do
	name=${t#"$SW_BUILD"/tests/}
	if "$t" >"$t.log" 2>&1; then
		pass=$((pass + 1))
		echo "ok   $name"
	else
		fail=$((fail + 1))
		failed="$failed $name"
		echo "FAIL $name (log: $t.log)"
		tail -n 40 "$t.log" | sed 's/^/    /'
	fi
done
echo "unit: $pass passed, $fail failed"
[ "$fail" -eq 0 ] || { echo "failed:$failed"; exit 1; }

#!/bin/sh
# Run each fuzz target for a number of seconds from its committed seed
# corpus (copied, so the committed corpus stays small); a crash fails the
# run and leaves the input in build/fuzz/crashes/.
# usage: run.sh BUILD_DIR SECONDS TARGET...
dir=$1
secs=$2
shift 2
pass=0
fail=0
mkdir -p "$dir/crashes"
for t in "$@"; do
	work=$dir/corpus/$t
	mkdir -p "$work"
	[ -d "fuzz/corpus/$t" ] && cp fuzz/corpus/$t/* "$work/" 2>/dev/null
	log=$dir/$t.log
	rel=${SW_RELIABILITY:-build/reliability}
	mkdir -p "$rel"
	if "$dir/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
	    -artifact_prefix="$dir/crashes/$t-" -print_final_stats=1 "$work" >"$log" 2>&1; then
		pass=$((pass + 1))
		runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
		echo "ok   fuzz/$t ($runs runs in ${secs}s)"
		printf '{"tried": "libFuzzer %s (ASan+UBSan, clang)", "amount": "%s runs in %s s", "result": "no crash, leak or invariant failure", "ok": true}\n' \
		    "$t" "$runs" "$secs" >"$rel/fuzz_$t.json"
	else
		fail=$((fail + 1))
		echo "FAIL fuzz/$t (log: $log)"
		printf '{"tried": "libFuzzer %s (ASan+UBSan, clang)", "amount": "%s s", "result": "crash: see %s", "ok": false}\n' \
		    "$t" "$secs" "$log" >"$rel/fuzz_$t.json"
		grep -A 30 "ERROR\|invariant\|SUMMARY" "$log" | head -40 | sed 's/^/    /'
	fi
done
echo "fuzz: $pass passed, $fail failed"
[ -z "${SW_TALLY:-}" ] || echo "$pass $fail" >>"$SW_TALLY"
[ "$fail" -eq 0 ]

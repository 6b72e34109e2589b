#!/bin/sh
# make bench: every benchmark script in bench/, then one summary table.
#
# Each script prints its own report, and also one machine-readable row per
# figure (format in bench/lib.sh, which gives summary() to print it):
#
#   SUMMARY|name|value|unit|reference|ratio|target
#
# Those rows are kept out of the running output, collected, and printed at
# the end as one table: every figure, its reference from the same run, the
# ratio and the target, with ok or MISS where the target can be checked.  A
# script that fails gets a FAILED row and the others still run; the exit
# status is non-zero if any failed (a missed target is not a failure: the
# figures are the result).  BENCH_ONLY=PATTERN runs only the scripts whose
# name contains PATTERN (BENCH_ONLY=dmsg make bench).
set -u
rows=$(mktemp)
trap 'rm -f "$rows" "$rows.rc"' EXIT INT TERM
failed=0
for b in bench/*.sh; do
	case "$b" in bench/run.sh|*lib.sh) continue ;; esac
	case "$b" in *"${BENCH_ONLY:-}"*) ;; *) continue ;; esac
	echo "== $b"
	{ sh "$b" 2>&1; echo $? >"$rows.rc"; } |
	    awk -v f="$rows" '/^SUMMARY\|/ { print >> f; fflush(f); next } { print; fflush() }'
	if [ "$(cat "$rows.rc")" != 0 ]; then
		failed=1
		echo "SUMMARY|$b FAILED (exit $(cat "$rows.rc"))|-|-|-|-|-" >>"$rows"
	fi
done
echo
echo "== summary: every figure, its reference from the same run, the ratio and the target"
awk -F'|' '
# The number a field starts with ("61%" -> 61, "2048 KiB" -> 2048).
function num(s) { sub(/^ +/, "", s); return match(s, /^[-+]?[0-9.]+([eE][-+]?[0-9]+)?/) ? substr(s, 1, RLENGTH) + 0 : 0 }
function verdict(value, ratio, target,    op, rest, goal, x) {
	if (target == "-" || target == "") return ""
	if (!match(target, /^[<>]=?/)) return ""
	op = substr(target, 1, RLENGTH); rest = substr(target, RLENGTH + 1)
	sub(/^ +/, "", rest)
	goal = num(rest)
	if (rest ~ /%/) { if (ratio == "-" || ratio == "") return ""; x = num(ratio) }
	else { if (value == "-" || value == "") return ""; x = num(value) }
	if ((op == ">=" && x >= goal) || (op == ">" && x > goal) ||
	    (op == "<=" && x <= goal) || (op == "<" && x < goal)) return "ok"
	return "MISS"
}
$1 == "SUMMARY" {
	n++
	for (i = 2; i <= 7; i++) { c[n, i] = $i; if (length($i) > w[i]) w[i] = length($i) }
	c[n, 8] = verdict($3, $6, $7)
}
END {
	h[2] = "figure"; h[3] = "value"; h[4] = "unit"; h[5] = "reference (same run)"
	h[6] = "ratio"; h[7] = "target"; h[8] = ""
	for (i = 2; i <= 7; i++) if (length(h[i]) > w[i]) w[i] = length(h[i])
	fmt = "%-" w[2] "s  %" w[3] "s %-" w[4] "s  %-" w[5] "s  %" w[6] "s  %-" w[7] "s  %s\n"
	printf fmt, h[2], h[3], h[4], h[5], h[6], h[7], h[8]
	for (r = 1; r <= n; r++)
		printf fmt, c[r, 2], c[r, 3], c[r, 4], c[r, 5], c[r, 6], c[r, 7], c[r, 8]
	if (n == 0) print "(no figures)"
}' "$rows"
exit $failed

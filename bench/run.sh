#!/bin/sh
# make bench: every benchmark script in bench/, each printing its own ratios.
set -e
for b in bench/*.sh; do
	[ "$b" = bench/run.sh ] && continue
	echo "== $b"
	sh "$b"
done

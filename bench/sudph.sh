#!/bin/sh
# bench/sudph: sudph vs stcpr throughput between two visors on loopback, and
# sudph at 5 % datagram loss (see bench/sudph.py).  Target: sudph >= 50 % of stcpr.
set -eu
export SW_BUILD=${SW_BUILD:-build}
export SW_TMP=$(mktemp -d)
trap 'rm -rf "$SW_TMP"' EXIT INT TERM
/usr/bin/python3 bench/sudph.py

#!/bin/sh
# bench/nat: NAT type detection time against a local stun-server (bench/nat.py).
# Target: < 300 ms.
set -eu
export SW_BUILD=${SW_BUILD:-build}
export SW_TMP=$(mktemp -d)
trap 'rm -rf "$SW_TMP"' EXIT INT TERM
/usr/bin/python3 bench/nat.py

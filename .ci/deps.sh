#!/bin/sh
# Install the Debian packages the build and the tests need, only if missing.
set -e
PKGS="build-essential clang pkg-config libevent-dev libcjson-dev libhiredis-dev libsodium-dev
libcmocka-dev redis-server curl python3 python3-nacl wrk nginx-light procps
docker.io docker-compose debootstrap chromium"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing

#!/bin/sh
# compose/engine.sh: the Docker engine and the local images the compose e2e
# needs on a host with no registry.
#
#   sh compose/engine.sh start   print "DOCKER_HOST=…" of an engine that answers:
#                                the caller's, or a private dockerd started here
#                                (root only; its pid in $E2E_DIR/dockerd.pid)
#   sh compose/engine.sh images  make the base and redis images (cached by a
#                                content key) and print BASE_IMAGE=… REDIS_IMAGE=…
#   sh compose/engine.sh stop    stop the private dockerd started by "start"
#
# The private engine keeps its data in $SW_DOCKER_ROOT (default
# /var/lib/skywire-c/docker) so the images and build cache survive between
# runs; it runs with --iptables=false: the deployment's networks are internal
# and reached only through ports published on 127.0.0.1.
set -eu
dir=${E2E_DIR:-.e2e}
root=${SW_DOCKER_ROOT:-/var/lib/skywire-c/docker}
sock=${SW_DOCKER_SOCK:-/run/skywire-c-docker.sock}
suite=${SW_BASE_SUITE:-bookworm}
mirror=${SW_BASE_MIRROR:-$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}
mirror=${mirror:-http://deb.debian.org/debian}
mkdir -p "$dir"

answers() {
	timeout 5 docker ${1:+-H "$1"} version --format '{{.Server.Version}}' >/dev/null 2>&1
}

start() {
	if [ -n "${DOCKER_HOST:-}" ] && answers "$DOCKER_HOST"; then
		echo "DOCKER_HOST=$DOCKER_HOST"
		return
	fi
	if [ -z "${DOCKER_HOST:-}" ] && answers ""; then
		echo "DOCKER_HOST=unix:///var/run/docker.sock"
		return
	fi
	if answers "unix://$sock"; then
		echo "DOCKER_HOST=unix://$sock"
		return
	fi
	if [ "$(id -u)" -ne 0 ]; then
		echo "engine: no Docker engine answers and starting one needs root" \
			"(set DOCKER_HOST, or run as root)" >&2
		exit 1
	fi
	command -v dockerd >/dev/null || {
		echo "engine: dockerd not installed (apt-get install docker.io docker-compose" \
			"debootstrap; make deps does it)" >&2
		exit 1
	}
	mkdir -p "$root" /run/skywire-c-docker
	# setsid: the engine outlives the make that started it, until e2e-stop.
	setsid dockerd --data-root "$root" --exec-root /run/skywire-c-docker \
		--pidfile /run/skywire-c-docker/dockerd.pid -H "unix://$sock" \
		--storage-driver overlay2 --iptables=false --ip-masq=false \
		--bridge none >"$dir/dockerd.log" 2>&1 </dev/null &
	echo $! >"$dir/dockerd.pid"
	i=0
	until answers "unix://$sock"; do
		i=$((i + 1))
		if [ "$i" -gt 300 ] || ! kill -0 "$(cat "$dir/dockerd.pid")" 2>/dev/null; then
			echo "engine: dockerd did not answer in 30 s; log:" >&2
			tail -n 20 "$dir/dockerd.log" >&2
			exit 1
		fi
		sleep 0.1
	done
	echo "DOCKER_HOST=unix://$sock"
}

# An image named for the hash of what it is made from: rebuilt only when
# that changes, reused otherwise.
images() {
	key=$(printf '%s\n' "$suite" "$(cat compose/engine.sh compose/redis.Dockerfile)" |
		sha256sum | cut -c1-16)
	base=skywire-c-base:$key
	if ! docker image inspect "$base" >/dev/null 2>&1; then
		command -v debootstrap >/dev/null || {
			echo "engine: debootstrap not installed" >&2
			exit 1
		}
		t=$(mktemp -d /var/tmp/skywire-c-base.XXXXXX)
		echo "engine: building $base with debootstrap ($suite, $mirror)" >&2
		debootstrap --variant=minbase "$suite" "$t" "$mirror" >"$dir/debootstrap.log" 2>&1 || {
			tail -n 20 "$dir/debootstrap.log" >&2
			rm -rf "$t"
			exit 1
		}
		# The same mirror inside as outside; no package lists kept in the image.
		rm -rf "$t"/var/lib/apt/lists/* "$t"/var/cache/apt/archives/*.deb
		tar -C "$t" -c . | docker import -c 'CMD ["/bin/bash"]' - "$base" >/dev/null
		rm -rf "$t"
	fi
	redis=skywire-c-redis:$key
	if ! docker image inspect "$redis" >/dev/null 2>&1; then
		docker build -q --network host --build-arg BASE_IMAGE="$base" -t "$redis" \
			-f compose/redis.Dockerfile compose >/dev/null
	fi
	echo "BASE_IMAGE=$base"
	echo "REDIS_IMAGE=$redis"
}

stop() {
	[ -f "$dir/dockerd.pid" ] || return 0
	pid=$(cat "$dir/dockerd.pid")
	kill -TERM "$pid" 2>/dev/null || true
	i=0
	while kill -0 "$pid" 2>/dev/null; do
		i=$((i + 1))
		if [ "$i" -gt 300 ]; then
			echo "engine: dockerd $pid still running after 30 s, killing" >&2
			kill -KILL "$pid" 2>/dev/null || true
			break
		fi
		sleep 0.1
	done
	rm -f "$dir/dockerd.pid"
}

case "${1:-}" in
start) start ;;
images) images ;;
stop) stop ;;
*) echo "usage: $0 start|images|stop" >&2; exit 2 ;;
esac

#!/bin/sh
# The compose e2e mode (E2E_MODE=compose), called by e2e/run.sh, test.sh,
# stop.sh and make e2e-logs:
#
#   up        engine (compose/engine.sh), base and redis images, the project
#             images, docker-compose up -d of every service in the file plus the
#             visors and the e2e runner; waits until every container that has a
#             health check is healthy and prints the cold-start time
#   prepare   only the engine and the images (bench/compose.sh)
#   scenario  run one e2e/scenarios file in the runner (same env as the host
#             modes, with the services' names for addresses)
#   dc ARGS   docker-compose on this deployment (the compose-only scenarios use it)
#   logs      every container's log
#   down      docker-compose down -v, then stop the engine if "up" started it
#
# State (DOCKER_HOST, images, project) lives in $E2E_DIR/compose.env.
set -eu
dir=${E2E_DIR:-.e2e}
file=compose/docker-compose.yml
project=${E2E_COMPOSE_PROJECT:-skywire}
mkdir -p "$dir"
[ ! -f "$dir/compose.env" ] || . "$(cd "$dir" && pwd)/compose.env"
export DOCKER_HOST BASE_IMAGE REDIS_IMAGE 2>/dev/null || true

dc() {
	docker-compose -f "$file" -p "$project" --profile visors --profile e2e "$@"
}

ms() {
	echo $(( ($(date +%s%N) - $1) / 1000000 ))
}

# "name status" for every container of the project ($ids when set, else
# all); status is the health ("healthy", "starting", "unhealthy") or "none"
# without a health check.
states() {
	[ -n "${ids:-}" ] || ids=$(dc ps -q)
	[ -n "$ids" ] || return 0
	docker inspect -f '{{.Name}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} {{.State.Status}}' $ids
}

# The containers are listed once (docker-compose ps is ~0.8 s of Python a
# call, on two cores), then only docker inspect polls them.
wait_healthy() {
	deadline=$(( $(date +%s) + ${1:-120} ))
	ids=$(dc ps -q)
	while :; do
		st=$(states)
		if [ -n "$st" ] && ! echo "$st" | grep -qv ' healthy running$\| none running$'; then
			return 0
		fi
		if [ "$(date +%s)" -ge "$deadline" ]; then
			echo "compose: not all healthy after ${1:-120} s:" >&2
			echo "$st" >&2
			return 1
		fi
		sleep 0.2
	done
}

prepare() {
	if [ -f "$dir/compose.env" ] && [ -n "$(dc ps -q 2>/dev/null)" ]; then
		echo "e2e: compose deployment already running; make e2e-stop first" >&2
		exit 1
	fi
	command -v docker-compose >/dev/null || {
		echo "e2e: docker-compose not installed (make deps installs docker.io docker-compose debootstrap)" >&2
		exit 1
	}
	docker-compose -f "$file" --profile visors --profile e2e --profile collapsed config -q || {
		echo "e2e: docker-compose does not accept $file" >&2
		exit 1
	}
	eval "$(sh compose/engine.sh start)"
	export DOCKER_HOST
	echo "DOCKER_HOST=$DOCKER_HOST" >"$dir/compose.env"
	t=$(date +%s%N)
	eval "$(sh compose/engine.sh images)"
	export BASE_IMAGE REDIS_IMAGE
	printf 'BASE_IMAGE=%s\nREDIS_IMAGE=%s\n' "$BASE_IMAGE" "$REDIS_IMAGE" >>"$dir/compose.env"
	echo "e2e: base images $BASE_IMAGE $REDIS_IMAGE ready in $(ms "$t") ms"
	t=$(date +%s%N)
	for target in runtime e2e; do
		tag=skywire-c:latest
		[ "$target" = runtime ] || tag=skywire-c-e2e:latest
		docker build -q --network host --build-arg BASE_IMAGE="$BASE_IMAGE" --target "$target" \
			-t "$tag" -f compose/Dockerfile . >"$dir/build-$target.log" 2>&1 || {
			tail -n 30 "$dir/build-$target.log" >&2
			exit 1
		}
	done
	echo "e2e: project images built in $(ms "$t") ms"
}

up() {
	prepare
	t=$(date +%s%N)
	dc up -d --no-build >"$dir/compose-up.log" 2>&1 || {
		tail -n 30 "$dir/compose-up.log" >&2
		dc logs --tail 20 >&2
		exit 1
	}
	upms=$(ms "$t")
	wait_healthy 120 || { dc logs --tail 20 >&2; exit 1; }
	n=$(states | wc -l)
	echo "e2e: deployment (compose) $n containers healthy in $(ms "$t") ms" \
		"(up -d returned after $upms ms); logs: make e2e-logs"
}

# The runner's environment: the same variables the scenarios read in the
# host modes, naming services instead of 127.0.0.1.  E2E_MODE is "split" to
# the scenarios (no shared /health mux), E2E_COMPOSE=1 says where they are.
scenario() {
	docker exec -w /src \
		-e E2E_MODE=split -e E2E_COMPOSE=1 -e SW_BUILD=/usr/local \
		-e E2E_CONFIG=compose/deployment.json \
		-e E2E_DD=http://dmsg-discovery:9090 -e E2E_TD=http://transport-discovery:9091 \
		-e E2E_TPD=http://transport-discovery:9091 -e E2E_RF=http://route-finder:9092 \
		-e E2E_SD=http://service-discovery:9098 -e E2E_AR=http://address-resolver:9093 \
		-e E2E_STUN_HOST=stun-server -e E2E_STUN_HTTP=http://stun-server:9095 \
		-e E2E_SN=http://setup-node:9094 -e E2E_TS=http://transport-setup:9099 \
		-e E2E_TPVIZ=http://tpviz:9096 \
		"$(dc ps -q e2e)" sh -c 'E2E_SELF_HOST=$(hostname -i | cut -d" " -f1) exec "$@"' sh \
		timeout 300 /usr/bin/python3 "$@"
}

logs() {
	dc logs --no-color --timestamps "$@"
}

down() {
	if [ -n "${DOCKER_HOST:-}" ]; then
		dc down -v --remove-orphans >"$dir/compose-down.log" 2>&1 ||
			tail -n 20 "$dir/compose-down.log" >&2
		docker-compose -f "$file" -p "$project" --profile collapsed rm -fsv skywire \
			>/dev/null 2>&1 || true
	fi
	sh compose/engine.sh stop
	rm -f "$dir/compose.env"
}

cmd=${1:-}
[ $# -eq 0 ] || shift
case "$cmd" in
prepare) prepare ;;
up) up ;;
scenario) scenario "$@" ;;
dc) dc "$@" ;;
states) states ;;
wait) wait_healthy "${1:-60}" ;;
logs) logs "$@" ;;
down) down ;;
*) echo "usage: $0 prepare|up|scenario FILE|dc ARGS|states|wait [S]|logs|down" >&2; exit 2 ;;
esac

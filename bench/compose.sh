#!/bin/sh
# bench/compose.sh: how fast the deployment starts, as ratios to the seed's
# figures (two cores): the nine service containers of the seed + redis from
# `docker-compose up -d` to all healthy (seed ~90 s, target < 10 s); the whole
# e2e deployment (those, tpviz, three visors and the runner) the same way; the
# collapsed container to all checks ok (seed ~20 s, target < 1 s); the
# one-process deployment to all checks ok (target < 200 ms; the seed: /health
# 200 at ~90 ms but every check ok only at ~1.3 s); and each container's RSS
# (docker stats).  Each figure is also a SUMMARY row (bench/lib.sh).
#
# Uses the engine and images of e2e/compose.sh (a private dockerd when none
# answers; as root), under its own project name, so it runs beside an e2e
# deployment.  BENCH_COMPOSE=0 skips the Docker part.
set -eu
B=${SW_BUILD:-build}
dir=${E2E_DIR:-.e2e}/bench
mkdir -p "$dir"
# Its own project and subnet, so it can run beside an e2e deployment.
export E2E_DIR=$dir E2E_COMPOSE_PROJECT=skywire-bench SKYWIRE_NET=${SKYWIRE_NET:-10.213.1}
now() { date +%s%N; }
ms() { echo $(( ($(now) - $1) / 1000000 )); }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a / b}'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.0f%%", 100 * a / b}'; }
summary() { printf 'SUMMARY|%s|%s|%s|%s|%s|%s\n' "$1" "$2" "$3" "$4" "$5" "$6"; }
# The seed's nine service containers (tpviz came later) and redis.
NINE="redis dmsg-discovery dmsg-server transport-discovery route-finder service-discovery
address-resolver stun-server setup-node transport-setup"

# One process on the host: median of three starts, 5 ms polls.
one_process() {
	first="" ok=""
	for run in 1 2 3; do
		t=$(now)
		"$B/bin/skywire-svc" run --config compose/deployment.json >"$dir/one-$run.log" 2>&1 &
		pid=$!
		f="" code=000
		while [ "$code" != 200 ]; do
			code=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:9100/health || true)
			[ -n "$f" ] || [ "$code" = 000 ] || f=$(ms "$t")
			[ $(( ($(now) - t) / 1000000 )) -lt 20000 ] || { echo "bench: not healthy in 20 s" >&2; kill "$pid"; exit 1; }
			[ "$code" = 200 ] || sleep 0.005
		done
		o=$(ms "$t")
		kill -TERM "$pid"
		wait "$pid" || true
		first="$first $f" ok="$ok $o"
	done
	f=$(echo $first | tr ' ' '\n' | sort -n | sed -n 2p)
	o=$(echo $ok | tr ' ' '\n' | sort -n | sed -n 2p)
	echo "one-process: /health answers in $f ms, every check ok in $o ms (median of 3;" \
		"target < 200 ms: ratio $(ratio "$o" 200); seed ~1300 ms: ratio $(ratio "$o" 1300))"
	summary "one-process deployment, start to every check ok" "$o" ms "seed ~1300 ms" \
		"$(pct "$o" 1300)" "< 200 ms"
}

# up -d of the services named (all of the profiles' when none) to every
# container with a health check healthy: the time in ms on stdout.
up_healthy() {
	t=$(now)
	dcb up -d --no-build "$@" >>"$dir/up.log" 2>&1
	until [ -n "$(dcb ps -q)" ] && ! docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}healthy{{end}}' \
		$(dcb ps -q) | grep -qv '^healthy$'; do
		[ $(( ($(now) - t) / 1000000000 )) -lt 120 ] || { echo "bench: not healthy in 120 s" >&2; dcb down -v >/dev/null 2>&1; exit 1; }
		sleep 0.1
	done
	ms "$t"
}

containers() {
	if [ "${BENCH_COMPOSE:-1}" = 0 ]; then
		echo "compose: skipped (BENCH_COMPOSE=0)"
		return
	fi
	if ! sh e2e/compose.sh prepare >"$dir/prepare.log" 2>&1; then
		echo "compose: SKIPPED, no Docker engine or images: $(tail -n 1 "$dir/prepare.log")"
		return
	fi
	. "$(cd "$dir" && pwd)/compose.env"
	export DOCKER_HOST BASE_IMAGE REDIS_IMAGE
	# shellcheck disable=SC2086 # $profiles is words
	dcb() { docker-compose -f compose/docker-compose.yml -p skywire-bench $profiles "$@"; }
	profiles=""
	# shellcheck disable=SC2086 # service names are words
	up=$(up_healthy $NINE) || exit 1
	n=$(dcb ps -q | wc -l)
	echo "compose: $n containers (the seed's nine services + redis) up -d to all healthy in $up ms" \
		"(seed ~90000 ms: ratio $(ratio "$up" 90000); target < 10000 ms: ratio $(ratio "$up" 10000))"
	summary "compose, nine services + redis, up -d to all healthy" "$up" ms "seed ~90000 ms" \
		"$(pct "$up" 90000)" "< 10000 ms"
	echo "compose: RSS per container (docker stats --no-stream):"
	docker stats --no-stream --format '  {{.Name}} {{.MemUsage}}' $(dcb ps -q) | sed 's| / .*||'
	dcb down -v >/dev/null 2>&1
	# The whole e2e deployment, as make e2e-run E2E_MODE=compose starts it.
	profiles="--profile visors --profile e2e"
	all=$(up_healthy) || exit 1
	n=$(dcb ps -q | wc -l)
	echo "compose: the e2e deployment, $n containers (+ tpviz, visors, runner), up -d to all healthy in $all ms"
	summary "compose, e2e deployment ($n containers), up -d to all healthy" "$all" ms - - -
	dcb down -v >/dev/null 2>&1
	profiles=""
	# The collapsed form: one container.  Its supervisor logs "all services
	# running" (with its time) when every service is healthy, which is when
	# /health turns 200: that time, read from the log, is the figure, so no
	# poll's period or exec's cost (~100 ms a docker exec) is in it.  One
	# probe afterwards checks /health says so.
	t=$(now)
	dcb --profile collapsed up -d --no-build skywire >"$dir/collapsed-up.log" 2>&1
	u=$(ms "$t")
	cid=$(dcb --profile collapsed ps -q skywire)
	until line=$(docker logs "$cid" 2>&1 | grep -m 1 'supervisor all services running'); do
		[ $(( ($(now) - t) / 1000000000 )) -lt 60 ] || { echo "bench: collapsed not healthy in 60 s" >&2; break; }
		sleep 0.05
	done
	ts=$(date -d "$(echo "$line" | cut -d' ' -f1)" +%s%N)
	c=$(( (ts - t) / 1000000 ))
	docker exec "$cid" skywire-svc probe 9100 || echo "bench: collapsed /health not 200 after its log said so" >&2
	st=$(date -d "$(docker inspect -f '{{.State.StartedAt}}' "$cid")" +%s%N)
	echo "collapsed: up -d returned after $u ms; from the container's start to every check ok" \
		"$(( (ts - st) / 1000000 )) ms (the rest is docker-compose's own start, ~0.8 s of Python," \
		"and the container's creation)"
	echo "collapsed: one container up -d to every check ok in $c ms" \
		"(seed ~20000 ms: ratio $(ratio "$c" 20000); target < 1000 ms: ratio $(ratio "$c" 1000))"
	summary "compose, collapsed container, up -d to every check ok" "$c" ms "seed ~20000 ms" \
		"$(pct "$c" 20000)" "< 1000 ms"
	docker stats --no-stream --format '  {{.Name}} {{.MemUsage}}' "$cid" | sed 's| / .*||'
	dcb --profile collapsed down -v >/dev/null 2>&1
	sh e2e/compose.sh down >/dev/null 2>&1 || true
}

# Every figure here is wall time on shared cores: say how shared they were.
echo "bench/compose: load average at start: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
one_process
containers
echo "bench/compose: load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"

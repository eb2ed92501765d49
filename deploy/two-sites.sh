#!/usr/bin/env bash
# Two data centres on loopback, in the foreground (docs/TWO_SITES.md): site "east" (Redis :6390,
# servers :7500-7502, web apps :8080-8081) and site "west" (Redis :6391, servers :7600-7602, web
# apps :8180-8181), each a deploy/fleet.sh with its own data directory (build/data/<site>).
#   TWO_SITES_MODE=replicate (default)  both sites active: every server replicates its changes to
#                                       the other site's fleet (--dc, --remote_registry).
#   TWO_SITES_MODE=redis                west's Redis is a replica of east's (REPLICAOF, as Ctrip's
#                                       x-pipe does) and west's servers stand by on east's Redis:
#                                       to fail over, `redis-cli -p 6391 REPLICAOF NO ONE` and
#                                       restart west's servers with --redis=127.0.0.1:6391.
# The web apps of both sites share one cookie key set ($ROOT/webapp.keys), so a cookie issued in
# one site opens in the other. Arguments are extra session_server flags for every server of both
# sites. Ctrl-C stops both.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

readonly MODE=${TWO_SITES_MODE:-replicate}
readonly ROOT=${TWO_SITES_DIR:-$DEPLOY_ROOT/build/data}
readonly EAST_REDIS=6390 WEST_REDIS=6391
case "$MODE" in
  replicate)
    east_flags=(--dc=east "--remote_registry=127.0.0.1:$WEST_REDIS")
    west_flags=(--dc=west "--remote_registry=127.0.0.1:$EAST_REDIS")
    east_web="--dc=east --remote_registry=127.0.0.1:$WEST_REDIS"
    west_web="--dc=west --remote_registry=127.0.0.1:$EAST_REDIS"
    west_redis_args=""
    ;;
  redis)
    east_flags=(--dc=east)
    west_flags=(--dc=west "--redis=127.0.0.1:$EAST_REDIS")  # overrides the fleet's own --redis
    east_web="" west_web=""
    west_redis_args="--replicaof 127.0.0.1 $EAST_REDIS"
    ;;
  *) die "TWO_SITES_MODE must be replicate or redis" ;;
esac
# Web apps pass only the flags they know (older builds lack the two-site ones).
if ! has_flag "$SESSION_WEBAPP" remote_registry; then east_web="" west_web=""; fi

pids=()
stop_sites() {
  trap - INT TERM EXIT
  ((${#pids[@]} == 0)) || kill -TERM "${pids[@]}" 2>/dev/null || true
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_sites EXIT
trap 'stop_sites; exit 0' INT TERM

start_site() {  # name redis_port server_port webapp_port web_flags redis_args flags...
  local name=$1 redis=$2 server=$3 web=$4 web_flags=$5 redis_args=$6
  shift 6
  mkdir -p "$ROOT"
  FLEET_COOKIE_KEY_FILE=$ROOT/webapp.keys FLEET_DIR=$ROOT/$name FLEET_REDIS_PORT=$redis FLEET_SERVER_PORT=$server \
    FLEET_WEBAPP_PORT=$web FLEET_WEBAPP_FLAGS=$web_flags FLEET_REDIS_ARGS=$redis_args \
    "$DEPLOY_ROOT/deploy/fleet.sh" "$@" "${EXTRA[@]}" > >(sed -u "s/^/[$name] /") 2>&1 &
  pids+=($!)
}
EXTRA=("$@")
start_site east $EAST_REDIS 7500 8080 "$east_web" "" "${east_flags[@]}"
start_site west $WEST_REDIS 7600 8180 "$west_web" "$west_redis_args" "${west_flags[@]}"
for dir in "$ROOT/east" "$ROOT/west"; do
  deadline=$((SECONDS + 60))
  until [[ -e $dir/run/ready ]]; do
    ((SECONDS < deadline)) || die "a site did not start (see $dir/run)"
    sleep 0.2
  done
done
echo "Two sites ($MODE): east http://127.0.0.1:8080/ and west http://127.0.0.1:8180/."
echo "Both fleets: $SESSIONCTL --redis=127.0.0.1:$EAST_REDIS --remote_redis=127.0.0.1:$WEST_REDIS list"
echo "Ctrl-C stops both sites."
while true; do
  sleep 1 &
  wait $! || true
done

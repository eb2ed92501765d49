#!/usr/bin/env bash
# The local SessionServer fleet on loopback, in the foreground (scripts/run.sh builds, then runs
# this). Defaults:
#   Redis (the fleet's backing store and registry)  127.0.0.1:6390, AOF on, data in $FLEET_DIR/redis
#   session_server x3                               127.0.0.1:7500-7502, disk tier and journal in
#                                                   $FLEET_DIR/<port>, registered in the Redis
#   session_webapp x2 (the example shop)            http://127.0.0.1:8080 and :8081
# Arguments are extra session_server flags for every server (e.g. --memory_bytes=1073741824).
# Environment (all optional):
#   FLEET_SERVERS=3  FLEET_SERVER_PORT=7500 (first port; the others follow)  FLEET_REDIS_PORT=6390
#   FLEET_WEBAPPS=2  FLEET_WEBAPP_PORT=8080  FLEET_DIR=build/data  FLEET_HEARTBEAT_MS=1000
#   FLEET_SERVER_FLAGFILE=PATH  a base flagfile each server's generated flagfile includes first
#                               (e.g. deploy/flags/session_server.flags; later lines override it)
#   FLEET_QUIET=1               do not copy the logs to this terminal (they stay in $FLEET_DIR/run)
#   FLEET_WEBAPP_FLAGS="..."    extra session_webapp flags (e.g. --dc=east --remote_registry=...)
#   FLEET_REDIS_ARGS="..."      extra redis-server arguments (e.g. --replicaof 127.0.0.1 6390)
#   FLEET_COOKIE_KEY_FILE=PATH  the web apps' cookie key set (default $FLEET_DIR/webapp.keys)
#   BUILD=build/release         where the binaries are
# Every server gets a flagfile $FLEET_DIR/run/server-<port>.flags; deploy/add-server.sh,
# drain.sh, rolling-upgrade.sh and chaos.sh work on the fleet through that directory.
# Ctrl-C (or SIGTERM): web apps stop, then the servers (each writes its memory tier to disk and
# every change to Redis), then Redis.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

readonly NSERVERS=${FLEET_SERVERS:-3}
readonly SERVER_PORT=${FLEET_SERVER_PORT:-7500}
readonly NWEBAPPS=${FLEET_WEBAPPS:-2}
readonly WEBAPP_PORT=${FLEET_WEBAPP_PORT:-8080}
REDIS_PORT=${FLEET_REDIS_PORT:-6390}
HEARTBEAT_MS=${FLEET_HEARTBEAT_MS:-1000}
HOST=127.0.0.1
SERVER_BASE_FLAGFILE=${FLEET_SERVER_FLAGFILE:-}
if [[ -n $SERVER_BASE_FLAGFILE ]]; then
  SERVER_BASE_FLAGFILE=$(realpath "$SERVER_BASE_FLAGFILE")
fi

for bin in "$SESSION_SERVER" "$SESSIONCTL"; do
  [[ -x $bin ]] || die "$bin is missing: scripts/build.sh release"
done
((NWEBAPPS == 0)) || [[ -x $SESSION_WEBAPP ]] || die "$SESSION_WEBAPP is missing"
command -v redis-server >/dev/null || die "redis-server is missing: scripts/install-deps.sh"

server_port_list=()
for ((i = 0; i < NSERVERS; i++)); do server_port_list+=($((SERVER_PORT + i))); done
webapp_port_list=()
for ((i = 0; i < NWEBAPPS; i++)); do webapp_port_list+=($((WEBAPP_PORT + i))); done

mkdir -p "$RUN_DIR" "$FLEET_DIR/redis"
exec 8>"$RUN_DIR/lock"
flock -n 8 || die "a fleet already runs from $FLEET_DIR (its fleet.sh holds $RUN_DIR/lock)"
for port in "$REDIS_PORT" "${server_port_list[@]}" "${webapp_port_list[@]}"; do
  if port_busy "$port"; then die "port $port on 127.0.0.1 is in use; stop what is using it first"; fi
done
# A fresh run directory: servers added by add-server.sh last time are not restarted.
rm -f "$RUN_DIR"/*.pid "$RUN_DIR"/*.flags "$RUN_DIR/ready"

tail_pids=()
stopping=0
stop_all() {  # web apps, then servers (they flush what Redis lacks), then Redis
  ((stopping)) && return 0
  stopping=1
  trap - INT TERM EXIT
  rm -f "$RUN_DIR/ready"
  log "stopping: web apps, then session servers (writing to disk and Redis), then Redis"
  local pids=() pid f
  for f in "$RUN_DIR"/webapp-*.pid; do
    if [[ -e $f ]] && pid=$(cat "$f") && alive "$pid"; then pids+=("$pid"); fi
  done
  ((${#pids[@]} == 0)) || stop_pids 15 "${pids[@]}"
  pids=()
  for f in "$RUN_DIR"/server-*.pid; do  # servers added or restarted by the deploy/ scripts too
    if [[ -e $f ]] && pid=$(cat "$f") && alive "$pid"; then pids+=("$pid"); fi
  done
  # 60 s for the memory tier to reach the disk plus 10 s for Redis, then SIGKILL.
  ((${#pids[@]} == 0)) || stop_pids 80 "${pids[@]}"
  if [[ -f $RUN_DIR/redis.pid ]]; then stop_pids 30 "$(cat "$RUN_DIR/redis.pid")"; fi
  ((${#tail_pids[@]} == 0)) || kill "${tail_pids[@]}" 2>/dev/null || true
  rm -f "$RUN_DIR"/*.pid
  log "fleet stopped; data stays in $FLEET_DIR"
}
trap stop_all EXIT
trap 'stop_all; exit 0' INT TERM

follow() {  # name file: copies the log to this terminal with a prefix
  [[ ${FLEET_QUIET:-0} == 1 ]] && return 0
  tail -n +1 -F "$2" 2>/dev/null | sed -u "s/^/[$1] /" &
  tail_pids+=($!)
}

cat >"$RUN_DIR/fleet.env" <<EOF
# The local fleet started by deploy/fleet.sh at $(date -Is) (read by the deploy/ scripts).
REDIS_PORT=$REDIS_PORT
HOST=$HOST
HEARTBEAT_MS=$HEARTBEAT_MS
SESSION_SERVER=$SESSION_SERVER
SESSIONCTL=$SESSIONCTL
SERVER_BASE_FLAGFILE=$SERVER_BASE_FLAGFILE
FLEET_PID=$$
EOF
printf '%s\n' "$@" >"$RUN_DIR/extra.flags"

: >"$RUN_DIR/redis.log"
read -r -a redis_args <<<"${FLEET_REDIS_ARGS:-}"
setsid redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$FLEET_DIR/redis" \
  --appendonly yes --save "" --protected-mode yes "${redis_args[@]}" \
  >"$RUN_DIR/redis.log" 2>&1 </dev/null &
echo $! >"$RUN_DIR/redis.pid"
wait_port "$REDIS_PORT" 20 || die "Redis did not start (see $RUN_DIR/redis.log)"

since=$(now_ms)
for port in "${server_port_list[@]}"; do
  write_server_flagfile "$port"
  start_server "$port"
  follow "$port" "$RUN_DIR/server-$port.log"
done
for port in "${server_port_list[@]}"; do
  wait_port "$port" 30 || die "session_server :$port did not start (see $RUN_DIR/server-$port.log)"
  wait_registered "$(server_id "$port")" "$since" active 20 ||
    die "session_server :$port did not register in the fleet registry"
done

servers=$(printf "$HOST:%s," "${server_port_list[@]}")
webapp_flags=(--servers="${servers%,}" --cookie_key_file="${FLEET_COOKIE_KEY_FILE:-$FLEET_DIR/webapp.keys}"
  --insecure_cookies)
if has_flag "$SESSION_WEBAPP" registry; then webapp_flags+=(--registry="127.0.0.1:$REDIS_PORT"); fi
read -r -a extra_webapp_flags <<<"${FLEET_WEBAPP_FLAGS:-}"
webapp_flags+=("${extra_webapp_flags[@]}")
for port in "${webapp_port_list[@]}"; do
  setsid "$SESSION_WEBAPP" --port="$port" "${webapp_flags[@]}" \
    >>"$RUN_DIR/webapp-$port.log" 2>&1 </dev/null &
  echo $! >"$RUN_DIR/webapp-$port.pid"
  follow "web $port" "$RUN_DIR/webapp-$port.log"
done
for port in "${webapp_port_list[@]}"; do
  wait_port "$port" 20 || die "session_webapp :$port did not start (see $RUN_DIR/webapp-$port.log)"
done
touch "$RUN_DIR/ready"

echo "SessionServer fleet: Redis on 127.0.0.1:$REDIS_PORT, session servers on" \
  "${server_port_list[*]/#/$HOST:} (Thrift, framed binary; proto/session.thrift)."
echo "Fleet view: $SESSIONCTL --redis=127.0.0.1:$REDIS_PORT list   (logs, flagfiles: $RUN_DIR)"
if ((NWEBAPPS > 0)); then
  echo "Open http://127.0.0.1:${webapp_port_list[0]}/ (sign in, fill a cart), then the same pages on"
  echo "http://127.0.0.1:${webapp_port_list[-1]}/: the session follows. Ctrl-C stops everything."
else
  echo "Ctrl-C stops everything."
fi
# Until Ctrl-C or SIGTERM (sleep in the background so the trap runs at once).
while true; do
  sleep 1 &
  wait $! || true
done

#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine: installs what is missing, builds, and runs a local
# SessionServer fleet on loopback with embedded defaults:
#   Redis (the fleet's backing store)   127.0.0.1:6390, data in build/data/redis (AOF)
#   session_server                      127.0.0.1:7500 and 127.0.0.1:7501, each with a 256 MiB
#                                       memory tier, a RocksDB disk tier and journal in
#                                       build/data/<port>, writing behind to the Redis
#   session_webapp (example shop)       http://127.0.0.1:8080 and http://127.0.0.1:8081, sharing
#                                       sessions through the fleet (cookie keys in
#                                       build/data/webapp.keys; plain HTTP, so not Secure)
# Extra arguments go to every session_server (e.g. --memory_bytes=1073741824).
# Ctrl-C stops everything cleanly (servers flush to Redis first).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release

readonly REDIS_PORT=6390
readonly SERVER_PORTS=(7500 7501)
readonly WEBAPP_PORTS=(8080 8081)
readonly DATA="$PWD/build/data"
mkdir -p "$DATA/redis"

redis_pid=""
server_pids=()
stop_all() {  # servers first (they flush what Redis lacks), then Redis
  trap - INT TERM EXIT
  for pid in "${server_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${server_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ -n "$redis_pid" ]]; then
    kill -TERM "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
  fi
}
trap stop_all INT TERM EXIT

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in "$REDIS_PORT" "${SERVER_PORTS[@]}" "${WEBAPP_PORTS[@]}"; do
  if port_busy "$port"; then
    echo "port $port on 127.0.0.1 is in use; stop what is using it first" >&2
    exit 1
  fi
done

# Its own session: Ctrl-C reaches the servers (which then flush to it) but not Redis itself.
setsid redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$DATA/redis" --appendonly yes \
  --save "" --protected-mode yes >"$DATA/redis/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 100); do
  redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
  sleep 0.1
done

for port in "${SERVER_PORTS[@]}"; do
  build/release/session_server --port="$port" --data_dir="$DATA/$port" \
    --redis="127.0.0.1:$REDIS_PORT" "$@" > >(sed -u "s/^/[$port] /") 2>&1 &
  server_pids+=($!)
done

servers=$(printf '127.0.0.1:%s,' "${SERVER_PORTS[@]}")
for port in "${WEBAPP_PORTS[@]}"; do
  build/release/examples/session_webapp --port="$port" --servers="${servers%,}" \
    --cookie_key_file="$DATA/webapp.keys" --insecure_cookies > >(sed -u "s/^/[web $port] /") 2>&1 &
  server_pids+=($!)
done

echo "SessionServer fleet: Redis on 127.0.0.1:$REDIS_PORT, session servers on" \
  "${SERVER_PORTS[*]/#/127.0.0.1:} (Thrift, framed binary; proto/session.thrift)."
echo "Open http://127.0.0.1:${WEBAPP_PORTS[0]}/ (sign in, fill a cart), then the same pages on"
echo "http://127.0.0.1:${WEBAPP_PORTS[1]}/: the session follows. Ctrl-C stops everything."
wait "${server_pids[@]}"

#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine: installs what is missing, builds, and runs a local
# SessionServer fleet on loopback with embedded defaults:
#   Redis (the fleet's backing store)   127.0.0.1:6390, data in build/data/redis (AOF)
#   session_server                      127.0.0.1:7500 and 127.0.0.1:7501, each with a 256 MiB
#                                       memory tier, a RocksDB disk tier and journal in
#                                       build/data/<port>, writing behind to the Redis
# Extra arguments go to every session_server (e.g. --memory_bytes=1073741824).
# Ctrl-C stops everything cleanly (servers flush to Redis first).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release

readonly REDIS_PORT=6390
readonly SERVER_PORTS=(7500 7501)
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
for port in "$REDIS_PORT" "${SERVER_PORTS[@]}"; do
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

echo "SessionServer fleet: Redis on 127.0.0.1:$REDIS_PORT, session servers on" \
  "${SERVER_PORTS[*]/#/127.0.0.1:} (Thrift, framed binary; proto/session.thrift)."
echo "A session written through one server is served by the other. Ctrl-C to stop."
wait "${server_pids[@]}"

# shellcheck shell=bash
# Shared by the loadtest/ scripts (sourced, not run). Everything on 127.0.0.1.
# The caller sets $tmp (a scratch directory) before start_redis.

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() {  # port: 0 once something listens there (up to 10 s)
  for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
  echo "nothing listens on $1" >&2
  return 1
}
stop_pids() {  # pid...: SIGTERM to each, up to 15 s for them to exit, then SIGKILL; reaps them
  local pid
  [[ $# -gt 0 ]] || return 0
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 150); do
    local alive=0
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [[ $alive == 0 ]] && break
    sleep 0.1
  done
  for pid in "$@"; do kill -KILL "$pid" 2>/dev/null || true; done
  for pid in "$@"; do wait "$pid" 2>/dev/null || true; done
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # pid: user + system clock ticks
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
start_redis() {  # port: a Redis without persistence, listening on return; its pid in $last_pid
  redis-server --bind 127.0.0.1 --port "$1" --save "" --appendonly no --dir "$tmp" \
    >"$tmp/redis-$1.log" 2>&1 &
  last_pid=$!
  wait_port "$1"
}
# The issue-12/13 trace: 30 s at scale 0.0002, seed 11 (19,312 requests), written to $1.
generate_standard_trace() {
  "$BUILD/loadtest/session_loadtest" generate --out="$1" --duration_s=30 --scale=0.0002 \
    --seed=11 >/dev/null
}

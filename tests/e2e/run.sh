#!/usr/bin/env bash
# End-to-end browser test (ctest: browser_end_to_end). Starts a Redis, session server 1 and two
# session_webapp instances on 127.0.0.1 (free ports, temp dirs), then runs browser_test.mjs:
# headless Debian Chromium driven by playwright-core signs in on webapp A, fills the cart on
# webapp B, starts session server 2, kills server 1 (the session's owner) with SIGKILL and checks
# the cart survived, then signs out. Everything is stopped on exit, pass or fail.
#
#   tests/e2e/run.sh path/to/session_server path/to/session_webapp
#
# Needs /usr/bin/chromium, node, npm, redis-server, redis-cli (scripts/install-deps.sh). Installs
# playwright-core (package-lock.json; no browser download) into tests/e2e/node_modules when missing.
# Set E2E_KEEP_LOGS=1 to keep the temp dir (logs, data dirs, failure screenshot).
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 SESSION_SERVER SESSION_WEBAPP" >&2
  exit 2
fi
server_bin=$(realpath "$1")
webapp_bin=$(realpath "$2")
here=$(cd "$(dirname "$0")" && pwd)
chromium=/usr/bin/chromium
start_s=$SECONDS

fail() {
  echo "browser_end_to_end: $*" >&2
  exit 1
}

[[ -x $chromium ]] || fail "$chromium missing: run scripts/install-deps.sh (Debian package chromium)"
for tool in node npm redis-server redis-cli; do
  command -v "$tool" >/dev/null || fail "$tool missing: run scripts/install-deps.sh"
done
[[ -x $server_bin ]] || fail "no session_server at $server_bin"
[[ -x $webapp_bin ]] || fail "no session_webapp at $webapp_bin"

# ---- playwright-core, exactly as package-lock.json pins it (one install at a time) ----
pinned=$(node -p "require('$here/package-lock.json').packages['node_modules/playwright-core'].version")
installed_version() {
  node -p "require('$here/node_modules/playwright-core/package.json').version" 2>/dev/null || true
}
if [[ $(installed_version) != "$pinned" ]]; then
  (
    flock 8
    if [[ $(installed_version) != "$pinned" ]]; then
      echo "browser_end_to_end: npm ci (playwright-core $pinned)"
      cd "$here"
      PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 timeout 120 npm ci --no-audit --no-fund --loglevel=error
    fi
  ) 8>/tmp/sessionserver-e2e-npm.lock
  [[ $(installed_version) == "$pinned" ]] || fail "npm ci did not install playwright-core $pinned"
fi

# ---- processes, all killed by the trap ----
tmp=$(mktemp -d /tmp/ss-e2e.XXXXXX)
pids=()
# Whether `pid` runs (a zombie, exited but not yet reaped, does not). A process that bash reaps
# between the two checks has no /proc entry left to read: gone too (an empty state once counted
# as running, and a webapp that had exited at once was reported as "did not exit within 10 s").
running() {
  local state
  kill -0 "$1" 2>/dev/null || return 1
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $state && $state != Z ]]
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # The browser test first: SIGTERM lets Playwright close Chromium, then it goes like the rest.
  if [[ -n ${node_pid:-} ]]; then
    kill -TERM "$node_pid" 2>/dev/null || true
    for _ in $(seq 60); do
      running "$node_pid" || break
      sleep 0.05
    done
    pids+=("$node_pid")
  fi
  # Server 2 is started by the test itself; it leaves its pid here.
  if [[ -s $tmp/server2.pid ]]; then pids+=("$(cat "$tmp/server2.pid")"); fi
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  # A sanitizer report in any process fails the test and is shown whole: it is the cause of
  # whatever else went wrong (a server that died with exit 66, say).
  for log in "$tmp"/*.log; do
    [[ -e $log ]] || continue
    reports=$(sanitizer_reports "$log")
    if [[ -n $reports ]]; then
      echo "---- sanitizer report in $(basename "$log")" >&2
      echo "$reports" >&2
      [[ $rc -ne 0 ]] || rc=1
    fi
  done
  if [[ $rc -ne 0 ]]; then
    for log in "$tmp"/*.log; do
      [[ -e $log ]] || continue
      echo "---- last lines of $(basename "$log")" >&2
      tail -n 25 "$log" >&2
    done
  fi
  if [[ ${E2E_KEEP_LOGS:-0} == 1 || $rc -ne 0 ]]; then
    echo "browser_end_to_end: logs kept in $tmp" >&2
  else
    rm -rf "$tmp"
  fi
  echo "browser_end_to_end: $([[ $rc -eq 0 ]] && echo passed || echo FAILED) in $((SECONDS - start_s)) s"
  exit "$rc"
}
# Prints each sanitizer report in a log whole (from its first line to its SUMMARY line), at most
# 400 lines.
sanitizer_reports() {
  awk '/WARNING: ThreadSanitizer|ERROR: AddressSanitizer|ERROR: LeakSanitizer|: runtime error: /{on=1}
       on {print; if (++n >= 400) exit} /^SUMMARY: /{on=0}' "$1"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  node -e "const s=require('net').createServer();
           s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close();});"
}

# Waits up to 10 s for a port file; prints the port.
wait_port_file() {
  local file=$1 pid=$2 name=$3
  for _ in $(seq 200); do
    if [[ -s $file ]]; then
      cat "$file"
      return 0
    fi
    running "$pid" || fail "$name exited during start-up (log: $tmp/$name.log)"
    sleep 0.05
  done
  fail "$name did not write $file within 10 s"
}

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$tmp" >"$tmp/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do
  [[ $(redis-cli -p "$redis_port" ping 2>/dev/null) == PONG ]] && break
  sleep 0.05
done
[[ $(redis-cli -p "$redis_port" ping 2>/dev/null) == PONG ]] || fail "redis-server did not start"

# Server 2's port is chosen now (the webapps' view lists both servers) but it starts later, from
# the test, so that the session is created on server 1. Until then a socket bound to the port,
# not listening, keeps it from being handed to anyone else, and connections to it are refused
# just as to a server that is down. The test kills the holder right before it starts server 2.
python3 -c '
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write("%d\n" % s.getsockname()[1])
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(120)' "$tmp/server2.reserved" &
holder_pid=$!
pids+=("$holder_pid")
server2_port=$(wait_port_file "$tmp/server2.reserved" "$holder_pid" server2_port_holder)
server_args=(--redis="127.0.0.1:$redis_port" --write_behind_delay_ms=10)
mkdir -p "$tmp/data1" "$tmp/data2"
"$server_bin" --port=0 --port_file="$tmp/server1.port" --data_dir="$tmp/data1" \
  "${server_args[@]}" >"$tmp/server1.log" 2>&1 &
server1_pid=$!
pids+=("$server1_pid")
disown "$server1_pid"  # the test kills it with SIGKILL: no "Killed" job report from bash
server1_port=$(wait_port_file "$tmp/server1.port" "$server1_pid" server1)

servers="127.0.0.1:$server1_port,127.0.0.1:$server2_port"
declare -A webapp_pid
for name in webapp_a webapp_b; do
  "$webapp_bin" --port=0 --port_file="$tmp/$name.port" --servers="$servers" \
    --cookie_key_file="$tmp/cookie.keys" --insecure_cookies >"$tmp/$name.log" 2>&1 &
  pids+=($!)
  webapp_pid[$name]=$!
done
webapp_a_port=$(wait_port_file "$tmp/webapp_a.port" "${webapp_pid[webapp_a]}" webapp_a)
webapp_b_port=$(wait_port_file "$tmp/webapp_b.port" "${webapp_pid[webapp_b]}" webapp_b)
echo "browser_end_to_end: redis :$redis_port, server1 :$server1_port (server2 :$server2_port" \
  "later), webapp A :$webapp_a_port, webapp B :$webapp_b_port"

server2_cmd=$(node -e 'console.log(JSON.stringify(process.argv.slice(1)))' -- "$server_bin" \
  --port="$server2_port" --port_file="$tmp/server2.port" --data_dir="$tmp/data2" "${server_args[@]}")

E2E_CHROMIUM=$chromium E2E_TMP=$tmp E2E_REDIS_PORT=$redis_port \
  E2E_WEBAPP_A="http://127.0.0.1:$webapp_a_port" E2E_WEBAPP_B="http://127.0.0.1:$webapp_b_port" \
  E2E_SERVER1_PID=$server1_pid E2E_SERVER2_PORT_HOLDER_PID=$holder_pid \
  E2E_SERVER2_CMD=$server2_cmd \
  timeout -k 5 50 node "$here/browser_test.mjs" &
node_pid=$!
# Waiting in the background lets a SIGTERM (ctest, Ctrl-C) reach the trap at once.
status=0
wait "$node_pid" || status=$?
node_pid=
[[ $status -eq 0 ]] || fail "the browser test failed (status $status)"

# A clean stop: each webapp exits 0 on SIGTERM within 10 s (under ASan this also checks leaks).
for name in webapp_a webapp_b; do
  pid=${webapp_pid[$name]}
  stop_s=$SECONDS
  kill -TERM "$pid"
  for _ in $(seq 200); do
    running "$pid" || break
    sleep 0.05
  done
  if running "$pid"; then
    echo "---- threads of $name (pid $pid), still running 10 s after SIGTERM" >&2
    timeout 60 gdb -p "$pid" -batch -ex 'thread apply all bt' 2>&1 | grep -v '^\[New LWP' | head -n 300 >&2 || true
    fail "$name did not exit within 10 s of SIGTERM"
  fi
  status=0
  wait "$pid" || status=$?
  [[ $status -eq 0 ]] || fail "$name exited with status $status after SIGTERM (log: $name.log)"
  echo "browser_end_to_end: $name exited $(( (SECONDS - stop_s) )) s after SIGTERM"
done
echo "browser_end_to_end: both webapps stopped cleanly on SIGTERM"

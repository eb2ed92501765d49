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
proc_usage() {  # pid: "cpu_ticks context_switches" so far, all its threads: user + system ticks
  # (/proc/PID/stat) and voluntary + nonvoluntary switches summed over /proc/PID/task/* (the
  # switches in /proc/PID/status are its main thread's alone; a thread that has exited is lost)
  local switches
  switches=$({ cat /proc/"$1"/task/*/status 2>/dev/null || true; } |
    awk '/^(non)?voluntary_ctxt_switches/ {n += $2} END {print n + 0}')
  echo "$(cpu_ticks "$1") $switches"
}
# perf stat events: syscalls (all, and the kinds that dominate a cache's profile) and context
# switches. Tracepoints need root or kernel.perf_event_paranoid=-1.
PERF_EVENTS=raw_syscalls:sys_enter,context-switches$(printf ',syscalls:sys_enter_%s' \
  read readv recvfrom recvmsg write writev sendto sendmsg epoll_wait epoll_pwait poll ppoll \
  epoll_ctl futex)
perf_check() {  # 0 if perf stat may count syscall tracepoints here, else says why
  perf stat -x, -e raw_syscalls:sys_enter -o /dev/null -- true 2>/dev/null && return 0
  echo "perf stat cannot count raw_syscalls:sys_enter: is linux-perf installed? As root, or with" \
    "kernel.perf_event_paranoid=-1 (it is $(cat /proc/sys/kernel/perf_event_paranoid))?" >&2
  return 1
}
perf_attach() {  # pid file: a perf stat of $PERF_EVENTS on pid and all its threads, counting
  # only between perf_ctl enable and disable, its counts to file at perf_detach; pid in $last_pid
  rm -f "$2.ctl" "$2.ack"
  mkfifo "$2.ctl" "$2.ack"
  perf stat -x, -o "$2" -e "$PERF_EVENTS" -p "$1" -D -1 --control "fifo:$2.ctl,$2.ack" \
    2>"$2.log" &
  last_pid=$!
}
perf_ctl() {  # file enable|disable: tells file's perf_attach and waits for its ack (up to 10 s)
  # shellcheck disable=SC2016
  timeout 10 bash -c 'echo "$1" >"$2.ctl" && read -r _ <"$2.ack"' _ "$2" "$1"
}
perf_detach() {  # pid file: SIGINT to a perf_attach (it writes its counts and exits; SIGTERM
  # would kill it silently), up to 10 s for that, then stop_pids; removes its fifos
  kill -INT "$1" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  stop_pids "$1"
  rm -f "$2.ctl" "$2.ack"
}
server_counter() {  # name port...: the sum of that info() counter of the session_servers on
  # those ports of 127.0.0.1 (over Thrift, with $BUILD/gen-py)
  /usr/bin/python3 - "$BUILD/gen-py" "$@" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from thrift.transport import TSocket, TTransport
from thrift.protocol import TBinaryProtocol
from sessionserver import SessionService
total = 0
for port in sys.argv[3:]:
    t = TTransport.TFramedTransport(TSocket.TSocket("127.0.0.1", int(port)))
    c = SessionService.Client(TBinaryProtocol.TBinaryProtocol(t))
    t.open(); total += c.info().counters[sys.argv[2]]; t.close()
print(total)
PY
}
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

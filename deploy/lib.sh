# shellcheck shell=bash
# Shared by the deploy/ scripts (sourced, not run). The state of a local fleet started by
# deploy/fleet.sh lives in $FLEET_DIR/run:
#   fleet.env              REDIS_PORT, HOST, HEARTBEAT_MS, SESSION_SERVER, ... (sourced here)
#   server-<port>.flags    the server's complete flagfile (restarts reuse it as is)
#   server-<port>.pid      its process id; server-<port>.log its stderr (glog)
#   extra.flags            the extra session_server flags given to fleet.sh
#   webapp-<port>.pid/.log, redis.pid, ready (exists while the fleet is up)
# Every server runs in its own session (setsid): Ctrl-C in fleet.sh's terminal reaches only
# fleet.sh, which then stops web apps, servers (they flush to Redis) and Redis in that order.

DEPLOY_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly DEPLOY_ROOT
BUILD=${BUILD:-$DEPLOY_ROOT/build/release}
FLEET_DIR=${FLEET_DIR:-$DEPLOY_ROOT/build/data}
RUN_DIR=$FLEET_DIR/run

first_existing() {  # path...: prints the first that exists (or the first one)
  local p
  for p in "$@"; do
    if [[ -x $p ]]; then echo "$p"; return 0; fi
  done
  echo "$1"
}
SESSION_SERVER=${SESSION_SERVER:-$BUILD/session_server}
SESSIONCTL=${SESSIONCTL:-$(first_existing "$BUILD/sessionctl" "$BUILD/tools/sessionctl")}
SESSION_WEBAPP=${SESSION_WEBAPP:-$BUILD/examples/session_webapp}
SESSION_LOADTEST=${SESSION_LOADTEST:-$BUILD/loadtest/session_loadtest}

# snapshot_binaries DIR: copies session_server, sessionctl and session_loadtest there and points
# SESSION_SERVER, SESSIONCTL and SESSION_LOADTEST at the copies, so a rebuild during a
# measurement does not change what runs (rolling restarts included).
snapshot_binaries() {
  local bin
  mkdir -p "$1"
  for bin in "$SESSION_SERVER" "$SESSIONCTL" "$SESSION_LOADTEST"; do
    [[ -x $bin ]] || die "$bin is missing: scripts/build.sh release"
    cp "$bin" "$1/"
  done
  export SESSION_SERVER=$1/session_server SESSIONCTL=$1/sessionctl
  SESSION_LOADTEST=$1/session_loadtest
}

log() { echo "[$(date +%H:%M:%S.%3N)] $*" >&2; }
die() { log "error: $*"; exit 1; }
now_ms() { date +%s%3N; }

# Reads fleet.env of a running fleet (REDIS_PORT, HOST, HEARTBEAT_MS, SESSION_SERVER...).
load_fleet_env() {
  [[ -f $RUN_DIR/fleet.env ]] ||
    die "no fleet in $FLEET_DIR (start deploy/fleet.sh, or set FLEET_DIR to its data directory)"
  # shellcheck disable=SC1091
  source "$RUN_DIR/fleet.env"
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {  # port [timeout_s=20]
  local deadline=$((SECONDS + ${2:-20}))
  while ((SECONDS < deadline)); do
    port_busy "$1" && return 0
    sleep 0.05
  done
  return 1
}

# alive PID: the process exists and is not a zombie.
alive() {
  local state
  [[ -n ${1:-} && -r /proc/$1/stat ]] || return 1
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $state && $state != Z ]]
}
# wait_gone PID TIMEOUT_S: 0 once the process has exited, 1 on timeout.
wait_gone() {
  local deadline=$((SECONDS + $2))
  while alive "$1"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
  wait "$1" 2>/dev/null || true  # reap it if it is our child
  return 0
}
# stop_pids TIMEOUT_S PID...: SIGTERM all, wait up to TIMEOUT_S, then SIGKILL what is left.
stop_pids() {
  local timeout=$1 pid
  shift
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "$@"; do
    if ! wait_gone "$pid" "$timeout"; then
      log "pid $pid did not stop within ${timeout}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      wait_gone "$pid" 5 || true
    fi
  done
}

# The fleet's servers, by port (those with a flagfile in the run directory).
server_ports() {
  local f
  for f in "$RUN_DIR"/server-*.flags; do
    [[ -e $f ]] || continue
    f=${f##*/server-}
    echo "${f%.flags}"
  done | sort -n
}
server_pid() {  # port: prints the pid if that server runs
  local pid
  pid=$(cat "$RUN_DIR/server-$1.pid" 2>/dev/null) || return 1
  alive "$pid" && echo "$pid"
}
server_id() { echo "$HOST:$1"; }        # the default --server_id (host:port)
port_of_id() { echo "${1##*:}"; }

# write_server_flagfile PORT: the complete flagfile of one local server.
write_server_flagfile() {
  local port=$1 f="$RUN_DIR/server-$1.flags"
  {
    echo "# session_server $HOST:$port of the local fleet (written by deploy/fleet.sh)."
    echo "# Restarts (deploy/rolling-upgrade.sh, chaos.sh) reuse this file unchanged."
    if [[ -n ${SERVER_BASE_FLAGFILE:-} ]]; then echo "--flagfile=$SERVER_BASE_FLAGFILE"; fi
    echo "--host=$HOST"
    echo "--port=$port"
    echo "--data_dir=$FLEET_DIR/$port"
    echo "--redis=127.0.0.1:$REDIS_PORT"
    echo "--heartbeat_ms=$HEARTBEAT_MS"
    echo "# extra flags given to fleet.sh:"
    cat "$RUN_DIR/extra.flags"
  } >"$f.tmp"
  mv "$f.tmp" "$f"
}

# start_server PORT: starts it from its flagfile in its own session; pid in server-PORT.pid.
start_server() {
  local port=$1
  setsid "$SESSION_SERVER" --flagfile="$RUN_DIR/server-$port.flags" \
    >>"$RUN_DIR/server-$port.log" 2>&1 </dev/null &
  echo $! >"$RUN_DIR/server-$port.pid"
  disown $! 2>/dev/null || true  # no "Killed" job report when chaos.sh kills it
}

sessionctl() { "$SESSIONCTL" --redis="127.0.0.1:$REDIS_PORT" "$@"; }
# member_field ID COLUMN: a column of `sessionctl list` for that server (3 = state, 4 = items,
# 6 = requests); empty if it is not listed.
member_field() {
  sessionctl list 2>/dev/null | awk -v id="$1" -v col="$2" 'NR > 1 && $1 == id {print $col}'
}
# The wall-clock ms of the server's last heartbeat, straight from the registry hash.
member_heartbeat_ms() {
  redis-cli -p "$REDIS_PORT" --raw hget "ss:fleet:v1:m:$1" heartbeat_ms 2>/dev/null || true
}
# wait_registered ID SINCE_MS STATE_REGEX TIMEOUT_S: until `sessionctl list` shows the server in
# a matching state with a heartbeat sent at or after SINCE_MS (so not an entry left by a
# previous process of the same id, which lives 3 heartbeats).
wait_registered() {
  local id=$1 since=$2 states=$3 deadline=$((SECONDS + $4)) state hb
  while ((SECONDS < deadline)); do
    state=$(member_field "$id" 3)
    hb=$(member_heartbeat_ms "$id")
    if [[ -n $state && $state =~ ^($states)$ && ${hb:-0} -ge $since ]]; then return 0; fi
    sleep 0.2
  done
  return 1
}

# server_info PORT: "name value" lines of info() (state, uptime and every counter).
server_info() {
  /usr/bin/python3 - "$1" "$BUILD/gen-py" <<'PY'
import sys
sys.path.insert(0, sys.argv[2])
from thrift.transport import TSocket, TTransport
from thrift.protocol import TBinaryProtocol
from sessionserver import SessionService
sock = TSocket.TSocket("127.0.0.1", int(sys.argv[1]))
sock.setTimeout(2000)
t = TTransport.TFramedTransport(sock)
c = SessionService.Client(TBinaryProtocol.TBinaryProtocol(t))
t.open()
i = c.info()
t.close()
print("server_id", i.serverId)
print("state", i.state)
print("uptime_seconds", i.uptimeSeconds)
for k in sorted(i.counters):
    print(k, i.counters[k])
PY
}
info_counter() {  # port name
  server_info "$1" 2>/dev/null | awk -v n="$2" '$1 == n {print $2}'
}

# has_flag BINARY FLAG: whether the binary defines --FLAG (from its gflags --helpfull).
has_flag() {
  local help
  help=$("$1" --helpfull 2>&1 || true)
  grep -Eq "^ +-$2 \(" <<<"$help"
}

#!/usr/bin/env bash
# A/B of two session_server binaries on the same closed-loop replay, in turn (A B A B ...), so
# that a comparison holds while the machine's speed drifts. Each run starts a fresh server (its
# defaults plus EXTRA_FLAGS) with a fresh Redis behind it, replays the trace with 16 workers and
# measures throughput, p99.9 and CPU per request of the server plus its Redis (from /proc).
#   loadtest/ab_servers.sh SERVER_A SERVER_B [pairs=3]
# PRELOAD_A / PRELOAD_B: a library to LD_PRELOAD into that side's server (an allocator, say:
# PRELOAD_B=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 with the same binary on both sides).
# REPLAYER_A / REPLAYER_B: that side's session_loadtest (default $BUILD's), to compare the client
# library's cost: the last column is the replayer's own CPU per request (session_client included).
# Trace: generate --duration_s=30 --scale=0.0002 --seed=11 (19,312 requests). The replayer is
# $BUILD/loadtest/session_loadtest (BUILD=build/release). Prints one row per run and the median
# of the B/A ratios. Everything listens on 127.0.0.1 and is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $# -ge 2 ]] || { echo "usage: $0 SERVER_A SERVER_B [pairs]" >&2; exit 2; }
readonly A=$1 B=$2 PAIRS=${3:-3}
readonly BUILD=${BUILD:-build/release}
# shellcheck source=loadtest/lib.sh
source loadtest/lib.sh
tmp=$(mktemp -d)
pids=()
stop_all() {
  stop_pids "${pids[@]}"
  pids=()
}
trap 'stop_all; rm -rf "$tmp"' EXIT
generate_standard_trace "$tmp/trace"

one_run() {  # binary preload replayer -> "req/s p999_us cpu_us/req replayer_cpu_us/req"
  local bin=$1 preload=$2 replayer=$3 redis_port server_port redis_pid server_pid before after
  redis_port=$(free_port)
  start_redis "$redis_port"
  redis_pid=$last_pid
  server_port=$(free_port)
  rm -rf "$tmp/data"
  # shellcheck disable=SC2086
  LD_PRELOAD=$preload "$bin" --port="$server_port" --redis="127.0.0.1:$redis_port" \
    --data_dir="$tmp/data" ${EXTRA_FLAGS:-} >"$tmp/server.log" 2>&1 &
  server_pid=$!
  pids=("$server_pid" "$redis_pid")
  wait_port "$server_port"
  before=$(( $(cpu_ticks "$server_pid") + $(cpu_ticks "$redis_pid") ))
  local TIMEFORMAT='%U %S'  # bash's time: the replayer's user and system seconds
  { time "$replayer" replay --trace="$tmp/trace" --closed_loop --workers=16 \
      --target="sessionserver://127.0.0.1:$server_port" --json="$tmp/run.json" >/dev/null 2>&1; } \
    2>"$tmp/replayer.time"
  after=$(( $(cpu_ticks "$server_pid") + $(cpu_ticks "$redis_pid") ))
  stop_all
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); hz=float(sys.argv[3])
ops = max(1, r["ops"]); u, s = map(float, open(sys.argv[4]).read().split())
print(int(r["throughput_ops_s"]), r["latency_us"]["p999"],
      round(float(sys.argv[2]) / hz * 1e6 / ops, 1), round((u + s) * 1e6 / ops, 1))' \
    "$tmp/run.json" "$((after - before))" "$(getconf CLK_TCK)" "$tmp/replayer.time"
}

printf '%-5s %-2s %10s %10s %12s %14s\n' pair '' req/s p99.9_us cpu_us/req replayer_us/req
ratios=()
for pair in $(seq "$PAIRS"); do
  read -r ta pa ca ra < <(one_run "$A" "${PRELOAD_A:-}" "${REPLAYER_A:-$BUILD/loadtest/session_loadtest}")
  printf '%-5s %-2s %10s %10s %12s %14s\n' "$pair" A "$ta" "$pa" "$ca" "$ra"
  read -r tb pb cb rb < <(one_run "$B" "${PRELOAD_B:-}" "${REPLAYER_B:-$BUILD/loadtest/session_loadtest}")
  printf '%-5s %-2s %10s %10s %12s %14s\n' "$pair" B "$tb" "$pb" "$cb" "$rb"
  ratios+=("$tb $ta $pb $pa $cb $ca $rb $ra")
done
printf '%s\n' "${ratios[@]}" | python3 -c '
import statistics, sys
rows = [list(map(float, l.split())) for l in sys.stdin if l.strip()]
med = lambda i: statistics.median(r[i] / r[i + 1] for r in rows)
print("median B/A: throughput %.2fx, p99.9 %.2fx, cpu per request %.2fx, replayer cpu per request"
      " %.2fx" % (med(0), med(2), med(4), med(6)))'

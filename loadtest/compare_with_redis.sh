#!/usr/bin/env bash
# Replays one trace against a local SessionServer fleet and against plain Redis (as a web app
# would use it for sessions), in the same run, and prints a side-by-side table with ratios:
# throughput, p50/p99/p99.9 latency, server CPU time per request, resident memory per stored
# session. Everything listens on 127.0.0.1 (free ports) and is stopped at the end.
#   loadtest/compare_with_redis.sh [duration_s=30] [scale=0.0001] [speed=1]
# Needs a release build (scripts/build.sh release). Results: $OUT (default build/compare/).
set -euo pipefail
cd "$(dirname "$0")/.."
readonly DURATION=${1:-30} SCALE=${2:-0.0001} SPEED=${3:-1}
readonly BUILD=${BUILD:-build/release}
readonly OUT=${OUT:-build/compare}
mkdir -p "$OUT"
# shellcheck source=loadtest/lib.sh
source loadtest/lib.sh
tmp=$(mktemp -d)
pids=()          # Redis processes
server_pids=()   # session_server processes (stopped first: they flush to their Redis)
cleanup() {
  stop_pids "${server_pids[@]}"
  stop_pids "${pids[@]}"
  rm -rf "$tmp"
}
trap cleanup EXIT

start_redis_tracked() { start_redis "$1"; pids+=("$last_pid"); }

backing_port=$(free_port); start_redis_tracked "$backing_port"; backing_pid=$last_pid
peer_port=$(free_port); start_redis_tracked "$peer_port"; peer_pid=$last_pid
server_ports=()
for i in 0 1; do
  port=$(free_port)
  "$BUILD/session_server" --port="$port" --redis="127.0.0.1:$backing_port" \
    --data_dir="$tmp/server$i" >"$tmp/server$i.log" 2>&1 &
  server_pids+=($!); server_ports+=("$port")
  wait_port "$port"
done
fleet="sessionserver://127.0.0.1:${server_ports[0]},127.0.0.1:${server_ports[1]}"

"$BUILD/loadtest/session_loadtest" generate --out="$tmp/trace" --duration_s="$DURATION" \
  --scale="$SCALE"

run() {  # name target pids...
  local name=$1 target=$2; shift 2
  local before=0 after=0 p
  for p in "$@"; do before=$((before + $(cpu_ticks "$p"))); done
  "$BUILD/loadtest/session_loadtest" replay --trace="$tmp/trace" --target="$target" \
    --speed="$SPEED" --json="$OUT/$name.json" --html="$OUT/$name.html"
  for p in "$@"; do after=$((after + $(cpu_ticks "$p"))); done
  echo $((after - before)) >"$OUT/$name.cpu_ticks"
}
run fleet "$fleet" "${server_pids[@]}" "$backing_pid"
run redis "redis://127.0.0.1:$peer_port" "$peer_pid"

# Sessions stored and resident memory: the fleet's servers (their memory tiers hold every
# session; Redis behind them is the backing copy, counted separately) vs the peer Redis.
fleet_rss=0
for p in "${server_pids[@]}"; do fleet_rss=$((fleet_rss + $(rss_kb "$p"))); done
fleet_items=$(/usr/bin/python3 - "${server_ports[@]}" <<PY
import sys
sys.path.insert(0, "$BUILD/gen-py")
from thrift.transport import TSocket, TTransport
from thrift.protocol import TBinaryProtocol
from sessionserver import SessionService
total = 0
for port in sys.argv[1:]:
    t = TTransport.TFramedTransport(TSocket.TSocket("127.0.0.1", int(port)))
    c = SessionService.Client(TBinaryProtocol.TBinaryProtocol(t))
    t.open(); total += c.info().counters["items"]; t.close()
print(total)
PY
)
backing_rss=$(rss_kb "$backing_pid")
peer_rss=$(rss_kb "$peer_pid")
peer_keys=$(redis-cli -p "$peer_port" dbsize)
backing_keys=$(redis-cli -p "$backing_port" dbsize)

/usr/bin/python3 - "$OUT" "$(getconf CLK_TCK)" "$fleet_rss" "$fleet_items" "$backing_rss" \
  "$backing_keys" "$peer_rss" "$peer_keys" <<'PY'
import json, sys
out, hz = sys.argv[1], float(sys.argv[2])
fleet_rss, fleet_items, backing_rss, backing_keys, peer_rss, peer_keys = map(float, sys.argv[3:9])
f = json.load(open(f"{out}/fleet.json")); r = json.load(open(f"{out}/redis.json"))
fc = float(open(f"{out}/fleet.cpu_ticks").read()) / hz
rc = float(open(f"{out}/redis.cpu_ticks").read()) / hz
rows = [
  ("requests", f["ops"], r["ops"]),
  ("throughput (req/s)", f["throughput_ops_s"], r["throughput_ops_s"]),
  ("p50 (us)", f["latency_us"]["p50"], r["latency_us"]["p50"]),
  ("p99 (us)", f["latency_us"]["p99"], r["latency_us"]["p99"]),
  ("p99.9 (us)", f["latency_us"]["p999"], r["latency_us"]["p999"]),
  ("errors", f["errors"], r["errors"]),
  ("lost updates", f["lost_updates"], r["lost_updates"]),
  ("stale reads", f["stale_reads"], r["stale_reads"]),
  ("resurrected", f["resurrected"], r["resurrected"]),
  ("server CPU per request (us)", fc * 1e6 / max(1, f["ops"]), rc * 1e6 / max(1, r["ops"])),
  ("resident bytes per stored session", fleet_rss * 1024 / max(1, fleet_items),
   peer_rss * 1024 / max(1, peer_keys)),
]
print(f"{'':36} {'fleet':>14} {'plain Redis':>14} {'fleet/Redis':>12}")
for name, a, b in rows:
    ratio = f"{a / b:.2f}x" if b else "-"
    print(f"{name:36} {a:14.1f} {b:14.1f} {ratio:>12}")
print(f"(fleet CPU includes its backing Redis; sessions stored: fleet {fleet_items:.0f}, "
      f"peer {peer_keys:.0f}; the backing Redis holds {backing_keys:.0f} keys in "
      f"{backing_rss/1024:.1f} MiB more)")
print(f"reports: {out}/fleet.html, {out}/redis.html")
PY

#!/usr/bin/env bash
# Runs the same closed-loop replay several times against one session_server (its defaults, its
# own Redis) and against plain Redis, and prints the checker's findings per run. With no fault
# injected the fleet must show none: any lost update, stale read or resurrection there is either
# a bug of the fleet or a false alarm of the checker, and fails this script. Plain Redis shows
# its real lost updates (no locks), which is the point of the comparison.
#   loadtest/checker_runs.sh [runs=20] [workers=16]
# Trace: generate --duration_s=30 --scale=0.0002 --seed=11 (19,312 requests). Needs a release
# build (scripts/build.sh release). Everything listens on 127.0.0.1 and is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
readonly RUNS=${1:-20} WORKERS=${2:-16}
readonly BUILD=${BUILD:-build/release}
# shellcheck source=loadtest/lib.sh
source loadtest/lib.sh
tmp=$(mktemp -d)
pids=()
cleanup() {
  stop_pids "${pids[@]}"  # the server first: it flushes to its Redis
  rm -rf "$tmp"
}
trap cleanup EXIT
backing=$(free_port); start_redis "$backing"; pids+=("$last_pid")
peer=$(free_port); start_redis "$peer"; pids+=("$last_pid")
server=$(free_port)
"$BUILD/session_server" --port="$server" --redis="127.0.0.1:$backing" --data_dir="$tmp/data" \
  >"$tmp/server.log" 2>&1 &
pids=("$!" "${pids[@]}")  # the server stops first: it flushes to its Redis
wait_port "$server"
generate_standard_trace "$tmp/trace"

anomalies() {  # json: "lost stale resurrected errors throughput"
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))
print(r["lost_updates"], r["stale_reads"], r["resurrected"], r["errors"], int(r["throughput_ops_s"]))' "$1"
}
printf '%-5s %-8s %6s %6s %6s %6s %8s\n' run target lost stale resur errors req/s
failed=0
for run in $(seq "$RUNS"); do
  for target in fleet redis; do
    url="sessionserver://127.0.0.1:$server"
    [[ $target == redis ]] && url="redis://127.0.0.1:$peer"
    "$BUILD/loadtest/session_loadtest" replay --trace="$tmp/trace" --target="$url" --closed_loop \
      --workers="$WORKERS" --json="$tmp/$target.json" >"$tmp/$target.out" 2>&1
    read -r lost stale resur errors tput < <(anomalies "$tmp/$target.json")
    printf '%-5s %-8s %6s %6s %6s %6s %8s\n' "$run" "$target" "$lost" "$stale" "$resur" "$errors" "$tput"
    if [[ $target == fleet && $((lost + stale + resur + errors)) -ne 0 ]]; then
      failed=$((failed + 1))
      python3 -c 'import json,sys; [print("  ", e) for e in json.load(open(sys.argv[1]))["examples"]]' \
        "$tmp/fleet.json"
    fi
  done
done
echo "fleet runs with an anomaly or error: $failed of $RUNS"
[[ $failed -eq 0 ]]

#!/usr/bin/env bash
# Measures the loss of a whole data centre under load (docs/TWO_SITES.md), with
# session_loadtest's consistency checker running. Starts two sites on loopback in a temp
# directory (each deploy/fleet.sh: a Redis and MEASURE_SERVERS servers replicating to the other
# site), replays a trace through clients of site "east" that know site "west" (the loadtest's
# --remote_target), and MEASURE_OP_AT_S seconds in kills every process of east (servers and
# Redis, kill -9). Reports: requests, errors, lost updates, stale reads, resurrected sessions,
# p50/p99, the failover latency (the slowest request in the 3 s after the loss), east's
# replication delay (p50/p99/max, read just before the loss) and queue at that moment, and what
# west applied. Bounded; stops everything on exit.
# Environment: MEASURE_DURATION_S=40 MEASURE_SCALE=0.0001 MEASURE_OP_AT_S=(1/2 of the duration)
# MEASURE_SERVERS=2 MEASURE_OUT=build/measure BUILD=build/release.
# MEASURE_LINK_DELAY_MS=N (default 0): the cross-site link gets N ms each way (deploy/
# delay_proxy.py on ports 1000 above each server's): every cross-site call (replication, and
# east's clients reaching west) goes through it; the sites then name each other's servers by
# the proxies' ports (--remote_servers) instead of reading each other's registry.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

readonly DURATION=${MEASURE_DURATION_S:-40}
readonly SCALE=${MEASURE_SCALE:-0.0001}
readonly OP_AT=${MEASURE_OP_AT_S:-$((DURATION / 2))}
readonly NSERVERS=${MEASURE_SERVERS:-2}
readonly OUT=${MEASURE_OUT:-$DEPLOY_ROOT/build/measure}
readonly EAST_REDIS=26391 WEST_REDIS=26392 EAST_PORT=27600 WEST_PORT=27700
readonly LINK_DELAY_MS=${MEASURE_LINK_DELAY_MS:-0} PROXY_OFFSET=1000
mkdir -p "$OUT"
OUT_ABS=$(cd "$OUT" && pwd)
tmp=$(mktemp -d /tmp/ss-measure-sites.XXXXXX)
fleet_pids=()
replay_pid=""
proxy_pid=""
cleanup() {
  local rc=$? pid f
  trap - EXIT INT TERM
  if [[ -n $replay_pid ]] && alive "$replay_pid"; then kill -TERM "$replay_pid" 2>/dev/null || true; fi
  if [[ -n $proxy_pid ]]; then kill -TERM "$proxy_pid" 2>/dev/null || true; fi
  for pid in "${fleet_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${fleet_pids[@]}"; do wait_gone "$pid" 120 || kill -KILL "$pid" 2>/dev/null || true; done
  for f in "$tmp"/*/run/*.pid; do
    if [[ -e $f ]] && pid=$(cat "$f") && alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  done
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

snapshot_binaries "$tmp/bin"

list() { for ((p = $1; p < $1 + NSERVERS; p++)); do printf '127.0.0.1:%s,' "$p"; done; }
start_site() {  # name redis_port server_port remote-flag
  FLEET_DIR=$tmp/$1 FLEET_SERVERS=$NSERVERS FLEET_SERVER_PORT=$3 FLEET_REDIS_PORT=$2 \
    FLEET_WEBAPPS=0 FLEET_QUIET=1 setsid "$DEPLOY_ROOT/deploy/fleet.sh" --dc="$1" "$4" \
    --memory_bytes=134217728 >"$tmp/$1.out" 2>&1 </dev/null &
  fleet_pids+=($!)
}
if ((LINK_DELAY_MS > 0)); then
  pairs=()
  for ((i = 0; i < NSERVERS; i++)); do
    pairs+=("$((EAST_PORT + PROXY_OFFSET + i)):$((EAST_PORT + i))")
    pairs+=("$((WEST_PORT + PROXY_OFFSET + i)):$((WEST_PORT + i))")
  done
  /usr/bin/python3 "$DEPLOY_ROOT/deploy/delay_proxy.py" "$LINK_DELAY_MS" "${pairs[@]}" \
    >"$tmp/proxy.log" 2>&1 &
  proxy_pid=$!
  east_remote=$(list $((WEST_PORT + PROXY_OFFSET)))
  west_remote=$(list $((EAST_PORT + PROXY_OFFSET)))
  start_site east $EAST_REDIS $EAST_PORT "--remote_servers=${east_remote%,}"
  start_site west $WEST_REDIS $WEST_PORT "--remote_servers=${west_remote%,}"
else
  start_site east $EAST_REDIS $EAST_PORT "--remote_registry=127.0.0.1:$WEST_REDIS"
  start_site west $WEST_REDIS $WEST_PORT "--remote_registry=127.0.0.1:$EAST_REDIS"
fi
east=$(list $EAST_PORT)
west=$(list $WEST_PORT)
((LINK_DELAY_MS == 0)) || west=$(list $((WEST_PORT + PROXY_OFFSET)))  # east's clients cross the link
log "sites up: east Redis :$EAST_REDIS servers :$EAST_PORT+, west Redis :$WEST_REDIS servers" \
  ":$WEST_PORT+; cross-site link delay ${LINK_DELAY_MS} ms each way"

"$SESSION_LOADTEST" generate --out="$tmp/trace" --duration_s="$DURATION" --scale="$SCALE" >&2
replay_start=$(now_ms)
timeout -s TERM $((DURATION + 90)) "$SESSION_LOADTEST" replay --trace="$tmp/trace" \
  --target="sessionserver://${east%,}" --remote_target="sessionserver://${west%,}" \
  --max_seconds=$((DURATION + 30)) --json="$OUT_ABS/site-loss.json" \
  --html="$OUT_ABS/site-loss.html" >"$OUT_ABS/site-loss.replay.txt" 2>&1 &
replay_pid=$!

while (($(now_ms) < replay_start + OP_AT * 1000)); do sleep 0.1; done
for ((p = EAST_PORT; p < EAST_PORT + NSERVERS; p++)); do
  echo "== 127.0.0.1:$p"
  server_info "$p" 2>/dev/null || echo "(not running)"
done >"$OUT_ABS/site-loss.east.txt"
loss_ms=$(now_ms)
loss_mono_us=$(/usr/bin/python3 -c 'import time; print(int(time.monotonic() * 1e6))')
for f in "$tmp"/east/run/server-*.pid "$tmp/east/run/redis.pid"; do
  kill -KILL "$(cat "$f")" 2>/dev/null || true
done
log "site east lost (every server and its Redis killed) at +$(((loss_ms - replay_start) / 1000)) s"

wait "$replay_pid" || log "replay exited $?"
replay_pid=""
for ((p = WEST_PORT; p < WEST_PORT + NSERVERS; p++)); do
  echo "== 127.0.0.1:$p"
  server_info "$p" 2>/dev/null || echo "(not running)"
done >"$OUT_ABS/site-loss.west.txt"

/usr/bin/python3 - "$OUT_ABS" "$replay_start" "$loss_ms" "$loss_mono_us" <<'PY' | tee "$OUT_ABS/site-loss.summary.txt"
import json, sys
out, t0, loss, loss_mono = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
r = json.load(open(f"{out}/site-loss.json"))
def servers(path):
    res, cur = {}, None
    for line in open(path):
        f = line.split()
        if line.startswith("== "): cur = f[1]; res[cur] = {}
        elif cur and len(f) == 2: res[cur][f[0]] = f[1]
    return res
east, west = servers(f"{out}/site-loss.east.txt"), servers(f"{out}/site-loss.west.txt")
sel = [s for s in r["per_second"] if loss - t0 <= s["second"] * 1000 + 999 <= loss - t0 + 3999]
failover = max([s["max_us"] for s in sel] or [0]) / 1000
errs = sum(s["errors"] for s in sel)
lat = r["latency_us"]
kinds = ",".join(f"{k}={v}" for k, v in sorted(r["errors_by_kind"].items())) or "none"
g = lambda d, k: [int(v.get(k, 0)) for v in d.values()]
print(f"site-loss: ops {r['ops']} ok {r['ok']} errors {r['errors']} ({kinds}) lost_updates "
      f"{r['lost_updates']} stale_reads {r['stale_reads']} resurrected {r['resurrected']} "
      f"p50 {lat['p50'] / 1000:.2f} ms p99 {lat['p99'] / 1000:.2f} ms")
print(f"  failover: slowest request in the 3 s after the loss {failover:.1f} ms, errors then {errs}")
print(f"  east just before the loss: replication delay p50 {max(g(east, 'repl_delay_p50_ms'))} ms, "
      f"p99 {max(g(east, 'repl_delay_p99_ms'))} ms, max {max(g(east, 'repl_delay_max_ms'))} ms; "
      f"queued {sum(g(east, 'repl_queue_depth'))}, sent {sum(g(east, 'repl_sent'))}, "
      f"dropped {sum(g(east, 'repl_dropped'))}")
print(f"  west: replica_applied {sum(g(west, 'replica_applied'))}, replica_stale "
      f"{sum(g(west, 'replica_stale'))}, restored_from_redis {sum(g(west, 'restored_from_redis'))}")
import re
ages = []  # how long before the loss each anomaly's change was acknowledged (ms)
for e in r["examples"]:
    m = re.search(r"acknowledged at (\d+) us", e)
    if m: ages.append((loss_mono - int(m.group(1))) / 1000)
if ages:
    print(f"  the {len(ages)} anomaly examples kept: changes acknowledged {min(ages):.0f} to "
          f"{max(ages):.0f} ms before the loss (negative: after it)")
for e in r["examples"][:3]: print("  example: " + e)
PY
log "results in $OUT_ABS/site-loss.*"

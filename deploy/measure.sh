#!/usr/bin/env bash
# Measures one fleet operation under load, with session_loadtest's consistency checker running:
#   deploy/measure.sh add|drain|rolling|chaos|baseline
# Starts its own fleet (deploy/fleet.sh: Redis + 3 servers, no web apps) in a temp directory on
# non-default loopback ports, generates a small trace, replays it against the fleet in the
# background, performs the operation MEASURE_OP_AT_S seconds into the replay, waits for the
# replay to end, and reports requests, errors by kind, lost updates, stale reads, resurrected
# sessions, p50/p99/max latency, the latency around the operation (for chaos: the failover
# latency after each kill) and the servers' counters. Bounded in time; stops everything on exit.
#   add      deploy/add-server.sh: one more server; when do new sessions reach it, does it take
#            over existing ones (restored_from_redis on it should stay 0)?
#   drain    deploy/drain.sh <first server> --stop
#   rolling  deploy/rolling-upgrade.sh (every server in turn: SIGTERM, warm restart)
#   chaos    deploy/chaos.sh (kill -9 a random server every MEASURE_CHAOS_INTERVAL_S, restart it)
#   baseline no operation: the same run for comparison
# Environment: MEASURE_DURATION_S=40 (trace length) MEASURE_SCALE=0.0001 MEASURE_OP_AT_S=(1/4 of
# the duration) MEASURE_OUT=build/measure MEASURE_REDIS_PORT=26390 MEASURE_SERVER_PORT=27500
# MEASURE_CHAOS_INTERVAL_S=5 MEASURE_CHAOS_DURATION_S=(half the duration) BUILD=build/release.
# Output: $MEASURE_OUT/<op>.json (replay --json), <op>.html, <op>.replay.txt, <op>.op.log,
# <op>.servers.txt (info() of each server at the end), <op>.summary.txt (the one-line summary),
# <op>-logs/ (server and Redis logs).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

op=${1:-}
case "$op" in
  add | drain | rolling | chaos | baseline) ;;
  *) die "usage: deploy/measure.sh add|drain|rolling|chaos|baseline" ;;
esac
readonly DURATION=${MEASURE_DURATION_S:-40}
readonly SCALE=${MEASURE_SCALE:-0.0001}
readonly OP_AT=${MEASURE_OP_AT_S:-$((DURATION / 4))}
readonly OUT=${MEASURE_OUT:-$DEPLOY_ROOT/build/measure}
readonly MREDIS_PORT=${MEASURE_REDIS_PORT:-26390}
readonly MSERVER_PORT=${MEASURE_SERVER_PORT:-27500}
readonly NSERVERS=3
mkdir -p "$OUT"
OUT_ABS=$(cd "$OUT" && pwd)

tmp=$(mktemp -d /tmp/ss-measure.XXXXXX)
fleet_pid=""
replay_pid=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n $replay_pid ]] && alive "$replay_pid"; then kill -TERM "$replay_pid" 2>/dev/null || true; fi
  if [[ -n $fleet_pid ]] && alive "$fleet_pid"; then
    kill -TERM "$fleet_pid" 2>/dev/null || true
    wait_gone "$fleet_pid" 120 || kill -KILL "$fleet_pid" 2>/dev/null || true
  fi
  # Anything a killed fleet.sh left behind (it stops its servers itself otherwise).
  local f pid
  for f in "$tmp"/fleet/run/*.pid; do
    if [[ -e $f ]] && pid=$(cat "$f") && alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  done
  rm -rf "$OUT_ABS/$op-logs"
  mkdir -p "$OUT_ABS/$op-logs"
  cp "$tmp"/fleet/run/*.log "$tmp"/fleet/run/*.flags "$tmp/fleet.out" "$OUT_ABS/$op-logs/" \
    2>/dev/null || true
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

snapshot_binaries "$tmp/bin"
export FLEET_DIR=$tmp/fleet
RUN_DIR=$FLEET_DIR/run

for ((p = MSERVER_PORT; p <= MSERVER_PORT + NSERVERS; p++)); do
  if port_busy "$p"; then die "port $p is in use (set MEASURE_SERVER_PORT)"; fi
done
FLEET_SERVERS=$NSERVERS FLEET_SERVER_PORT=$MSERVER_PORT FLEET_REDIS_PORT=$MREDIS_PORT \
  FLEET_WEBAPPS=0 FLEET_QUIET=1 setsid "$DEPLOY_ROOT/deploy/fleet.sh" \
  --memory_bytes=134217728 >"$tmp/fleet.out" 2>&1 </dev/null &
fleet_pid=$!
deadline=$((SECONDS + 60))
until [[ -e $RUN_DIR/ready ]]; do
  alive "$fleet_pid" || die "the fleet did not start: $(tail -n 5 "$tmp/fleet.out")"
  ((SECONDS < deadline)) || die "the fleet did not start within 60 s"
  sleep 0.2
done
load_fleet_env
log "fleet up: Redis :$REDIS_PORT, servers :$MSERVER_PORT-:$((MSERVER_PORT + NSERVERS - 1)) ($tmp)"

"$SESSION_LOADTEST" generate --out="$tmp/trace" --duration_s="$DURATION" --scale="$SCALE" >&2
servers=$(for ((p = MSERVER_PORT; p < MSERVER_PORT + NSERVERS; p++)); do printf '%s,' "$HOST:$p"; done)
replay_flags=()
if has_flag "$SESSION_LOADTEST" registry; then
  replay_flags+=(--registry="127.0.0.1:$REDIS_PORT")
  view="registry"
elif [[ $op == add ]]; then
  # No registry support in the replayer: the static list names the server to be added; until
  # it runs, the client's breaker skips it and its new sessions go to the next server.
  servers+="$HOST:$((MSERVER_PORT + NSERVERS)),"
  view="static list incl. the future server"
else
  view="static list"
fi
target="sessionserver://${servers%,}"
log "replay: $DURATION s of trace against $target (view: $view); $op at +${OP_AT}s"
replay_start=$(now_ms)
timeout -s TERM $((DURATION + 90)) \
  "$SESSION_LOADTEST" replay --trace="$tmp/trace" --target="$target" "${replay_flags[@]}" \
  --max_seconds=$((DURATION + 30)) --json="$OUT_ABS/$op.json" --html="$OUT_ABS/$op.html" \
  >"$OUT_ABS/$op.replay.txt" 2>&1 &
replay_pid=$!

while (($(now_ms) < replay_start + OP_AT * 1000)); do sleep 0.1; done
events=$OUT_ABS/$op.events
: >"$events"
echo "$(now_ms) op_start $op" >>"$events"
case "$op" in
  add)
    new_id=$("$DEPLOY_ROOT/deploy/add-server.sh" 2> >(tee "$OUT_ABS/$op.op.log" >&2))
    echo "$(now_ms) registered $new_id" >>"$events"
    # When do sessions reach it? Items > 0 in the registry (heartbeat granularity).
    first=""
    for _ in $(seq 200); do
      items=$(member_field "$new_id" 4)
      if [[ ${items:-0} -gt 0 ]]; then first=$(now_ms); break; fi
      sleep 0.1
    done
    if [[ -n $first ]]; then echo "$first first_items $new_id" >>"$events"; fi
    ;;
  drain)
    "$DEPLOY_ROOT/deploy/drain.sh" "$HOST:$MSERVER_PORT" --stop 2>&1 | tee "$OUT_ABS/$op.op.log" >&2
    ;;
  rolling)
    "$DEPLOY_ROOT/deploy/rolling-upgrade.sh" 2>&1 | tee "$OUT_ABS/$op.op.log" >&2
    ;;
  baseline) ;;  # the same run without an operation, for comparison
  chaos)
    CHAOS_DURATION_S=${MEASURE_CHAOS_DURATION_S:-$((DURATION / 2))} \
      CHAOS_INTERVAL_S=${MEASURE_CHAOS_INTERVAL_S:-5} CHAOS_EVENTS=$events \
      "$DEPLOY_ROOT/deploy/chaos.sh" 2>&1 | tee "$OUT_ABS/$op.op.log" >&2
    ;;
esac
echo "$(now_ms) op_end $op" >>"$events"

log "operation done; waiting for the replay to finish"
replay_rc=0
wait "$replay_pid" || replay_rc=$?
((replay_rc == 0)) || log "replay exited $replay_rc: $(tail -n 3 "$OUT_ABS/$op.replay.txt")"
[[ -s $OUT_ABS/$op.json ]] || die "the replay wrote no results"
replay_pid=""

for port in $(server_ports); do
  echo "== $HOST:$port"
  server_info "$port" 2>/dev/null || echo "(not running)"
done >"$OUT_ABS/$op.servers.txt"

/usr/bin/python3 - "$op" "$OUT_ABS" "$replay_start" "$view" <<'PY' | tee "$OUT_ABS/$op.summary.txt"
import json, sys
op, out, t0, view = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
r = json.load(open(f"{out}/{op}.json"))
events = [l.split() for l in open(f"{out}/{op}.events") if l.strip()]
servers, cur = {}, None
for line in open(f"{out}/{op}.servers.txt"):
    f = line.split()
    if line.startswith("== "): cur = f[1]; servers[cur] = {}
    elif cur and len(f) == 2: servers[cur][f[0]] = f[1]
per = r["per_second"]
def window(a_ms, b_ms):  # per-second stats whose intended start lies in [a, b]
    sel = [s for s in per if a_ms - t0 <= s["second"] * 1000 + 999 and s["second"] * 1000 <= b_ms - t0]
    return (max([s["max_us"] for s in sel] or [0]), sum(s["errors"] for s in sel),
            max([s["p99_us"] for s in sel] or [0]))
ev = {}
mono_kills = []  # monotonic us of each kill (chaos.sh), to place the checker's anomalies
for ms, kind, *rest in events:
    ev.setdefault(kind, []).append((int(ms), rest[0] if rest else ""))
    if kind == "kill" and len(rest) > 1: mono_kills.append(int(rest[1]))
op_start, op_end = ev["op_start"][0][0], ev["op_end"][0][0]
lat = r["latency_us"]
kinds = ",".join(f"{k}={v}" for k, v in sorted(r["errors_by_kind"].items())) or "none"
extra = []
wmax, werr, wp99 = window(op_start, op_end + 2000)
extra.append(f"during op ({(op_end - op_start) / 1000:.1f} s, +2 s): max {wmax / 1000:.1f} ms, "
             f"p99 {wp99 / 1000:.1f} ms, errors {werr}")
if op == "add":
    reg = ev.get("registered", [(0, "?")])[0]
    first = ev.get("first_items")
    new = servers.get(reg[1], {})
    extra.append(f"new server {reg[1]}: first sessions "
                 + (f"{(first[0][0] - reg[0]) / 1000:.1f} s after it registered" if first else "never seen")
                 + f", inserts {new.get('inserts', '?')}, restored_from_redis "
                 f"{new.get('restored_from_redis', '?')} (existing sessions taken over)")
if op == "chaos":
    kills = ev.get("kill", [])
    regs = ev.get("registered", [])
    lats, errs = [], 0
    for ms, sid in kills:
        m, e, _ = window(ms, ms + 3000)
        lats.append(m / 1000); errs += e
    back = [b - k for (k, _), (b, _) in zip(kills, regs)]
    if kills:
        lats_s = sorted(lats)
        extra.append(f"kills {len(kills)}; failover latency (slowest request in the 3 s after a "
                     f"kill) median {lats_s[len(lats_s) // 2]:.1f} ms, max {lats_s[-1]:.1f} ms; "
                     f"errors in those windows {errs}; killed server back in the registry after "
                     f"{min(back) if back else '?'}-{max(back) if back else '?'} ms")
if op == "chaos" and mono_kills and r["examples"]:
    # The checker keeps only the first examples: classify those. "In the window": the change
    # was acknowledged at most write_behind_delay (100 ms) + a flush round (100 ms) before a
    # kill, i.e. possibly not yet in Redis when the server died (the journal brings it to Redis
    # when the server restarts); anything else is a change Redis should have had.
    import re
    inside = outside = 0
    for e in r["examples"]:
        m = re.search(r"started at (\d+) us.* acknowledged at (\d+) us", e)
        if not m: continue
        start, ack = int(m.group(1)), int(m.group(2))
        if any(k - 200000 - 20000 <= ack <= k + 20000 for k in mono_kills): inside += 1
        else: outside += 1
    extra.append(f"of the {inside + outside} anomaly examples kept: {inside} acknowledged within "
                 f"the last flush window (200 ms) before a kill, {outside} outside it")
tot = lambda k: sum(int(s.get(k, 0)) for s in servers.values())
extra.append(f"servers: restored_from_redis {tot('restored_from_redis')}, wb_stale "
             f"{tot('wb_stale')}, wb_dropped {tot('wb_dropped')}, wb_recovered {tot('wb_recovered')}")
print(f"{op}: ops {r['ops']} ok {r['ok']} errors {r['errors']} ({kinds}) never_issued "
      f"{r['skipped']} lost_updates {r['lost_updates']} stale_reads {r['stale_reads']} "
      f"resurrected {r['resurrected']} p50 {lat['p50'] / 1000:.2f} ms p99 {lat['p99'] / 1000:.2f} ms "
      f"max {lat['max'] / 1000:.1f} ms [view: {view}]")
for e in extra: print("  " + e)
for e in r["examples"][:5]: print("  example: " + e)
PY
log "results in $OUT_ABS/$op.*"

#!/usr/bin/env bash
# Compares SessionServer with plain Redis (as a web app would use it for sessions) on the same
# trace. Everything listens on 127.0.0.1 (free ports) and is stopped at the end. Needs a release
# build (scripts/build.sh release; BUILD=build/release). Results: $OUT (default build/compare/).
#
#   loadtest/compare_with_redis.sh [duration_s=30] [scale=0.0001] [speed=1]
# Open loop: a fleet of two servers (one backing Redis) and a plain Redis, one replay each at the
# trace's pace; a side-by-side table: throughput, p50/p99/p99.9 latency, server CPU time per
# request, resident memory per stored session.
#
#   loadtest/compare_with_redis.sh closed [runs=3] [workers=16]
# Closed loop (issue 13): the standard trace (30 s, scale 0.0002, seed 11: 19,312 requests)
# replayed as fast as `workers` workers go, in turn (A B A B ...): A, one session_server (its
# defaults, journal on) writing behind to its own Redis; B, one plain Redis used directly. Fresh
# processes and data dir per run. Per process (session_server, its Redis, A's replayer, plain
# Redis, B's replayer) and per request: CPU (the servers' /proc/PID/stat over the replay, bash's
# time of the replayer), context switches (the servers' /proc/PID/task/*/status, perf's count of
# the replayer) and syscalls (perf stat -e raw_syscalls:sys_enter and a few syscalls:sys_enter_*,
# attached to the servers for the replay alone); plus throughput, p50..p99.99 latency, errors,
# lost updates and stale reads. Prints markdown (also to $OUT/closed/closed.md): a row per run
# and side; medians over the runs, with the median of the per-run ratios session_server / plain
# Redis; syscalls per request by kind. perf needs root or kernel.perf_event_paranoid=-1; counting
# every syscall slows the processes a little (on both sides). Other load on the machine shows as
# lower throughput and more context switches: run it on an idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=fleet
if [[ ${1:-} == closed ]]; then MODE=closed; shift; fi
readonly MODE
readonly BUILD=${BUILD:-build/release}
readonly OUT=${OUT:-build/compare}
mkdir -p "$OUT"
# shellcheck source=loadtest/lib.sh
source loadtest/lib.sh
tmp=$(mktemp -d)
pids=()          # Redis and perf processes
server_pids=()   # session_server processes (stopped first: they flush to their Redis)
cleanup() {
  stop_pids "${server_pids[@]}"
  stop_pids "${pids[@]}"
  rm -rf "$tmp"
}
trap cleanup EXIT

start_redis_tracked() { start_redis "$1"; pids+=("$last_pid"); }

closed_side() {  # run side: one closed-loop replay; side A (session_server + its Redis) or B
  # (plain Redis); its files are $OUT/closed/run<run>-<side>.*
  local run=$1 side=$2 f="$OUT/closed/run$1-$2" redis_port target port p
  local names=() procs=() perfs=()
  redis_port=$(free_port)
  start_redis_tracked "$redis_port"
  if [[ $side == A ]]; then
    port=$(free_port)
    "$BUILD/session_server" --port="$port" --redis="127.0.0.1:$redis_port" \
      --data_dir="$tmp/data-$run" >"$f.server.log" 2>&1 &
    server_pids+=("$!")
    names=(server redis); procs=("$!" "$last_pid")
    wait_port "$port"
    target="sessionserver://127.0.0.1:$port"
  else
    names=(redis); procs=("$last_pid")
    target="redis://127.0.0.1:$redis_port"
  fi
  for p in "${!procs[@]}"; do
    perf_attach "${procs[p]}" "$f.${names[p]}.perf"
    pids+=("$last_pid"); perfs+=("$last_pid")
  done
  for p in "${!procs[@]}"; do
    perf_ctl "$f.${names[p]}.perf" enable
    proc_usage "${procs[p]}" >"$f.${names[p]}.before"
  done
  # The replayer under perf (all its threads); its user and system seconds from bash's time
  # inside, so that perf's own CPU is left out.
  # shellcheck disable=SC2016
  timeout 300 perf stat -x, -o "$f.replayer.perf" -e "$PERF_EVENTS" -- bash -c \
    'TIMEFORMAT="%3U %3S"; { time "${@:2}" >"$1.log" 2>&1; } 2>"$1.time"' _ "$f.replayer" \
    "$BUILD/loadtest/session_loadtest" replay --trace="$tmp/trace" --closed_loop \
    --workers="$WORKERS" --target="$target" --json="$f.json"
  if [[ $side == A ]]; then  # until the write-behind is done (its Redis has every change)
    for _ in $(seq 100); do
      [[ $(server_counter wb_queue_depth "$port") == 0 ]] && break
      sleep 0.1
    done
  fi
  for p in "${!procs[@]}"; do
    proc_usage "${procs[p]}" >"$f.${names[p]}.after"
    perf_ctl "$f.${names[p]}.perf" disable
  done
  for p in "${!procs[@]}"; do perf_detach "${perfs[p]}" "$f.${names[p]}.perf"; done
  stop_pids "${server_pids[@]}"
  stop_pids "${pids[@]}"
  server_pids=(); pids=()
  rm -rf "$tmp/data-$run"
}

closed_mode() {  # [runs] [workers]
  local run
  readonly RUNS=${1:-3} WORKERS=${2:-16}
  perf_check
  rm -rf "$OUT/closed"
  mkdir -p "$OUT/closed"
  generate_standard_trace "$tmp/trace"
  for run in $(seq "$RUNS"); do
    echo "run $run of $RUNS: A (session_server + its Redis), B (plain Redis)" >&2
    closed_side "$run" A
    closed_side "$run" B
  done
  closed_tables "$OUT/closed" | tee "$OUT/closed/closed.md"
}
closed_tables() {  # dir: the markdown tables of closed_mode's runs
  python3 - "$1" "$RUNS" "$WORKERS" "$(getconf CLK_TCK)" <<'PY'
import json, statistics, sys
out, runs, workers, hz = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
KINDS = [("read/recv", "read readv recvfrom recvmsg"),
         ("write/send", "write writev sendto sendmsg"),
         ("epoll_wait/poll", "epoll_wait epoll_pwait poll ppoll"), ("epoll_ctl", "epoll_ctl"),
         ("futex", "futex")]  # as counted by $PERF_EVENTS (lib.sh); the rest is "other"

def perf(path):  # perf stat -x, output: {event: count}
  counts = {}
  for line in open(path):
    f = line.strip().split(",")
    if len(f) > 3 and not line.startswith("#"):
      counts[f[2]] = float(f[0]) if f[0][:1].isdigit() else 0.0
  return counts

def process(prefix, name, ops):  # per request: cpu (us), cs (switches), sys ({kind: syscalls})
  p = perf(f"{prefix}.{name}.perf")
  if name == "replayer":  # its whole run: bash's time, perf's count (all its threads)
    cpu_s, switches = sum(map(float, open(f"{prefix}.{name}.time").read().split())), \
        p["context-switches"]
  else:  # the replay's window, /proc (all the process's threads)
    (t0, c0), (t1, c1) = ([float(x) for x in open(f"{prefix}.{name}.{w}").read().split()]
                          for w in ("before", "after"))
    cpu_s, switches = (t1 - t0) / hz, c1 - c0
  calls = {"total": p["raw_syscalls:sys_enter"]}
  for kind, names in KINDS:
    calls[kind] = sum(p.get(f"syscalls:sys_enter_{n}", 0.0) for n in names.split())
  calls["other"] = calls["total"] - sum(calls[k] for k, _ in KINDS)
  return {"cpu": cpu_s * 1e6 / ops, "cs": switches / ops,
          "sys": {k: v / ops for k, v in calls.items()}}

rows = []  # one per run: {"A": {...}, "B": {...}}
for run in range(1, runs + 1):
  row = {}
  for side, names in (("A", ("server", "redis", "replayer")), ("B", ("redis", "replayer"))):
    prefix = f"{out}/run{run}-{side}"
    r = json.load(open(f"{prefix}.json"))
    row[side] = {"json": r, **{n: process(prefix, n, max(1, r["ops"])) for n in names}}
  rows.append(row)

def fmt(v):
  return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"

print(f"Closed loop, {workers} workers, the standard trace ({rows[0]['A']['json']['ops']:,} "
      f"requests), {runs} runs in turn A B: A = one session_server (defaults, journal on) writing "
      "behind to its own Redis, B = one plain Redis. Per request; `a / b / c` is session_server "
      "/ its Redis / replayer on A, - / Redis / replayer on B.\n")
print("| run | side | req/s | p50 us | p99 us | p99.9 us | p99.99 us | errors | lost updates "
      "| stale reads | CPU us | syscalls | context switches |")
print("|---|---|" + "---:|" * 11)
for run, row in enumerate(rows, 1):
  for side in ("A", "B"):
    d = row[side]; r = d["json"]; lat = r["latency_us"]
    procs = [d.get("server"), d["redis"], d["replayer"]]
    cell = lambda f: " / ".join(fmt(f(p)) if p else "-" for p in procs)
    print(f"| {run} | {side} | {r['throughput_ops_s']:,.0f} | {lat['p50']:,} | {lat['p99']:,} "
          f"| {lat['p999']:,} | {lat['p9999']:,} | {r['errors']} | {r['lost_updates']} "
          f"| {r['stale_reads']} | {cell(lambda p: p['cpu'])} "
          f"| {cell(lambda p: p['sys']['total'])} | {cell(lambda p: p['cs'])} |")

med = statistics.median
def line(label, fa, fb, ratio=True):  # medians of A and B, median of the per-run ratios A / B
  a, b = med(fa(r["A"]) for r in rows), med(fb(r["B"]) for r in rows)
  q = f"{med(fa(r['A']) / fb(r['B']) for r in rows):.2f}x" \
      if ratio and all(fb(r["B"]) for r in rows) else "-"
  print(f"| {label} | {fmt(a)} | {fmt(b)} | {q} |")
print(f"\nMedians over {runs} runs; A / B is the median of the per-run ratios.\n")
print("| per request | session_server (A) | plain Redis (B) | A / B |")
print("|---|---:|---:|---:|")
for label, f in [("throughput (req/s)", lambda s: s["json"]["throughput_ops_s"])] + [
    (f"{name} latency (us)", lambda s, k=k: s["json"]["latency_us"][k])
    for k, name in (("p50", "p50"), ("p99", "p99"), ("p999", "p99.9"), ("p9999", "p99.99"))]:
  line(label, f, f)
for k, name in (("errors", "errors"), ("lost_updates", "lost updates"),
                ("stale_reads", "stale reads")):
  total = lambda side, k=k: float(sum(r[side]["json"][k] for r in rows))
  print(f"| {name} (all runs, not per request) | {total('A'):.0f} | {total('B'):.0f} | - |")
for label, f in (("CPU (us)", lambda p: p["cpu"]), ("syscalls", lambda p: p["sys"]["total"]),
                 ("context switches", lambda p: p["cs"])):
  redis = lambda s, f=f: f(s["redis"])
  line(f"{label}: session_server + its Redis vs Redis",
       lambda s, f=f: f(s["server"]) + f(s["redis"]), redis)
  line(f"{label}: session_server alone vs Redis", lambda s, f=f: f(s["server"]), redis)
  line(f"{label}: its Redis vs Redis", redis, redis)
  line(f"{label}: replayer", lambda s, f=f: f(s["replayer"]), lambda s, f=f: f(s["replayer"]))
print("\nSyscalls per request by kind (medians; perf, over the replay).\n")
kinds = ["total"] + [k for k, _ in KINDS] + ["other"]
print("| process | " + " | ".join(kinds) + " |")
print("|---|" + "---:|" * len(kinds))
for side, name, label in (("A", "server", "session_server"), ("A", "redis", "its Redis"),
                          ("A", "replayer", "replayer (A)"), ("B", "redis", "plain Redis"),
                          ("B", "replayer", "replayer (B)")):
  print(f"| {label} | " + " | ".join(fmt(med(r[side][name]["sys"][k] for r in rows))
                                     for k in kinds) + " |")
PY
}
if [[ $MODE == closed ]]; then
  closed_mode "$@"
  exit 0
fi

readonly DURATION=${1:-30} SCALE=${2:-0.0001} SPEED=${3:-1}
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
fleet_items=$(server_counter items "${server_ports[@]}")
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

#!/usr/bin/env bash
# The write-behind pending index: one mutex vs sharded vs libcuckoo (bench/pending_index_bench.cc).
# Each implementation runs in a process of its own, in rounds (OneMutex, Sharded, Cuckoo, then
# again): in one process, whichever ran last measured up to 3x slower than in a process of its own,
# and runs in separate processes differ far more (up to 3x) than repetitions within one, so each
# round is one run per implementation and thread count. Prints medians over the rounds and how
# many rounds each beat OneMutex in (the machine is the same within a round), as a Markdown table.
#   bench/pending_index_bench.sh [rounds=15]
# Needs build/release (scripts/build.sh release).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-15}
bench=build/release/bench/pending_index_bench
[[ -x $bench ]] || { echo "build first: scripts/build.sh release" >&2; exit 2; }

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for ((round = 1; round <= rounds; round++)); do
  for impl in OneMutex Sharded Cuckoo; do
    "$bench" --benchmark_filter="<$impl>" --benchmark_min_time=1 --benchmark_out_format=json \
      --benchmark_out="$dir/$impl.$round.json" >&2
  done
done

python3 - "$dir" <<'PY'
import glob, json, os, re, statistics, sys
runs = {}  # (implementation, request threads, round) -> [(requests/s, share of time stalled)]
for path in glob.glob(sys.argv[1] + "/*.json"):
    rnd = os.path.basename(path).split(".")[1]
    for b in json.load(open(path))["benchmarks"]:
        if b.get("run_type") != "iteration" or "error_occurred" in b:
            continue
        impl, threads = re.match(r"BM_PendingIndex<(\w+)>/real_time/threads:(\d+)", b["name"]).groups()
        runs.setdefault((impl, int(threads), rnd), []).append((b["items_per_second"], b["stalled"]))
impls = ["OneMutex", "Sharded", "Cuckoo"]
rounds = sorted({r for _, _, r in runs})
print("| request threads | " + " | ".join(i + ", M req/s (min-max)" for i in impls) +
      " | Sharded / OneMutex (rounds faster) | Cuckoo / OneMutex (rounds faster) |"
      " stalled % (O / S / C) |")
print("|---" * 7 + "|")
for t in sorted({t for _, t, _ in runs}):
    rate = {i: [x for r in rounds for x, _ in runs[(i, t, r)]] for i in impls}
    med = {i: statistics.median(rate[i]) for i in impls}
    # Rounds run the three in turn, minutes apart: compare within a round, where the machine was
    # the same.
    per_round = {i: [statistics.median(x for x, _ in runs[(i, t, r)]) for r in rounds] for i in impls}
    faster = lambda i: sum(a > b for a, b in zip(per_round[i], per_round["OneMutex"]))
    cells = ["%.2f (%.2f-%.2f)" % (med[i] / 1e6, min(rate[i]) / 1e6, max(rate[i]) / 1e6)
             for i in impls]
    stalled = " / ".join(
        "%.0f" % (100 * statistics.median(s for r in rounds for _, s in runs[(i, t, r)]))
        for i in impls)
    print("| %d | %s | %.2f (%d of %d) | %.2f (%d of %d) | %s |" % (
        t, " | ".join(cells), med["Sharded"] / med["OneMutex"], faster("Sharded"), len(rounds),
        med["Cuckoo"] / med["OneMutex"], faster("Cuckoo"), len(rounds), stalled))
print("\n%d rounds, %d runs per cell" % (len(rounds), len(rate["OneMutex"])))
PY

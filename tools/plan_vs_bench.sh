#!/usr/bin/env bash
# Compares `zcpack plan` with the peaks `zcpack bench` measures, per loader,
# on each container given: the bench runs warm (the file read before each
# run, residency checked) with its 10-token prompt and --tokens N, and the
# plan is asked for the same context (10 + N), batch (10) and threads.
# Prints one markdown table row per container and loader: planned and
# measured peak anonymous and total RSS, and planned / measured.
#
#   tools/plan_vs_bench.sh [--zcpack BIN] [--runs R] [--tokens N] [--threads T] FILE...
#
# Exit status 1 when a ratio is outside [0.9, 1.1], 0 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
zcpack=build/tools/zcpack runs=3 tokens=16 threads=2
while [ $# -gt 0 ]; do
  case "$1" in
    --zcpack) zcpack=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --tokens) tokens=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { echo "usage: $0 [--zcpack BIN] [--runs R] [--tokens N] [--threads T] FILE..." >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
echo "| container | loader | plan anon MiB | bench anon MiB | ratio | plan total MiB | bench total MiB | ratio |"
echo "|---|---|---|---|---|---|---|---|"
for file in "$@"; do
  "$zcpack" bench "$file" --warm --runs "$runs" --tokens "$tokens" --threads "$threads" \
      --budget off --json > "$work/bench.json"
  "$zcpack" plan "$file" --context $((10 + tokens)) --batch 10 --threads "$threads" \
      --json > "$work/plan.json"
  python3 - "$file" "$work/bench.json" "$work/plan.json" <<'EOF' || status=1
import json, os, sys
name = os.path.basename(sys.argv[1])
bench = json.load(open(sys.argv[2]))
plan = json.load(open(sys.argv[3]))
planned = {l["loader"]: l for l in plan["contexts"][0]["loaders"]}
ok = True
for row in bench["rows"]:
    p, m = planned[row["loader"]], row["median"]
    cells = []
    for key in ("peak_anon_bytes", "peak_total_bytes"):
        ratio = p[key] / m[key]
        ok = ok and 0.9 <= ratio <= 1.1
        cells += ["%.1f" % (p[key] / 2**20), "%.1f" % (m[key] / 2**20), "%.3f" % ratio]
    print("| %s | %s | %s |" % (name, row["loader"], " | ".join(cells)))
sys.exit(0 if ok else 1)
EOF
done
exit $status

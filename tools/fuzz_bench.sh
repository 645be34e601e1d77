#!/usr/bin/env bash
# Fuzz benchmark: runs every libFuzzer target for a fixed number of
# executions (default 10 million each) from its seed corpus, under the
# sanitizers of the fuzz build (ASan + UBSan), and reports per target the
# executions, exec/s, coverage, wall time and findings (crash, leak, timeout,
# out-of-memory artifacts).
#
# The targets are every *_fuzzer program in the fuzz build that has a
# *_fuzzer_seeds generator beside it (tests/CMakeLists.txt,
# zcpack_add_fuzzer()): today the container, safetensors and GGUF readers
# and the tokenizer loaders;
# a new target is picked up without changing this script.
#
# Usage: tools/fuzz_bench.sh [options]
#   --runs N         executions per target, split across the jobs (default 10000000)
#   --jobs J         libFuzzer jobs per target (default 1); with J > 1 each job
#                    runs ceil(N/J) executions and all share the corpus
#   --workers W      jobs run at once (default: min(J, CPUs))
#   --targets LIST   comma-separated target names (default: all)
#   --build-dir DIR  fuzz build folder (default build-fuzz)
#   --no-build       reuse DIR as it is; fail if a target is missing
#   --out DIR        work folder: corpora, artifacts, logs, summary (default
#                    DIR/fuzz-bench); emptied first when an earlier run made it
#   --timeout S      libFuzzer -timeout per input in seconds (default 10)
#   --rss-limit-mb M, --malloc-limit-mb M   (defaults 2048 and 1024, as in ctest)
#   -h, --help
#
# Output: a table on stdout (build output goes to stderr), and
# OUT/summary.json and OUT/summary.tsv with one record per target. Each
# target's artifacts are in OUT/TARGET/artifacts, its libFuzzer output in
# OUT/TARGET/logs. Executions are summed over jobs; exec/s is executions over
# wall time; coverage (cov: edges, ft: features) is the largest any job
# reached, since jobs share a corpus but not their counters.
#
# Exit status: 0 every target ran its executions with no finding; 1 a
# target found a crash, leak, timeout or out-of-memory input; 2 a usage
# error; 3 the build failed, a target is missing, or a target stopped short
# of its executions without leaving an artifact.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=10000000
jobs=1
workers=""
targets=""
build_dir=build-fuzz
build=1
out=""
timeout=10
rss_limit_mb=2048
malloc_limit_mb=1024

usage() { sed -n '/^# Usage:/,/^#   -h, --help/p' "$0" | sed 's/^# \{0,1\}//'; }
die_usage() { echo "fuzz_bench: $1" >&2; usage >&2; exit 2; }
need_number() { [[ "$2" =~ ^[0-9]+$ ]] && [ "$2" -gt 0 ] || die_usage "$1 needs a positive integer, not '$2'"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --runs) [ $# -ge 2 ] || die_usage "--runs needs a value"; need_number --runs "$2"; runs=$2; shift 2 ;;
    --jobs) [ $# -ge 2 ] || die_usage "--jobs needs a value"; need_number --jobs "$2"; jobs=$2; shift 2 ;;
    --workers) [ $# -ge 2 ] || die_usage "--workers needs a value"; need_number --workers "$2"; workers=$2; shift 2 ;;
    --targets) [ $# -ge 2 ] || die_usage "--targets needs a value"; targets=$2; shift 2 ;;
    --build-dir) [ $# -ge 2 ] || die_usage "--build-dir needs a value"; build_dir=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --out) [ $# -ge 2 ] || die_usage "--out needs a value"; out=$2; shift 2 ;;
    --timeout) [ $# -ge 2 ] || die_usage "--timeout needs a value"; need_number --timeout "$2"; timeout=$2; shift 2 ;;
    --rss-limit-mb) [ $# -ge 2 ] || die_usage "--rss-limit-mb needs a value"; need_number --rss-limit-mb "$2"; rss_limit_mb=$2; shift 2 ;;
    --malloc-limit-mb) [ $# -ge 2 ] || die_usage "--malloc-limit-mb needs a value"; need_number --malloc-limit-mb "$2"; malloc_limit_mb=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die_usage "unknown option '$1'" ;;
  esac
done
cpus=$(nproc)
if [ -z "$workers" ]; then workers=$((jobs < cpus ? jobs : cpus)); fi
out=${out:-$build_dir/fuzz-bench}

# The same configuration as tools/test.sh, so the ctest fuzz runs and this
# benchmark exercise the same binaries.
if [ "$build" -eq 1 ]; then
  if ! command -v clang++ >/dev/null 2>&1; then
    echo "fuzz_bench: clang++ not found; run tools/install_deps.sh (clang, libclang-rt-14-dev)" >&2
    exit 3
  fi
  if ! CC=clang CXX=clang++ cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DZCPACK_BUILD_FUZZERS=ON -DZCPACK_SANITIZE=ON -DZCPACK_BUILD_TESTS=OFF \
      -DZCPACK_BUILD_BENCHMARKS=OFF >/dev/null ||
     ! cmake --build "$build_dir" -j"$cpus" --target zcpack_fuzzers >&2; then
    echo "fuzz_bench: the fuzz build in $build_dir failed" >&2
    exit 3
  fi
fi

fuzz_dir=$build_dir/tests/fuzz
available=()
if [ -d "$fuzz_dir" ]; then
  while IFS= read -r f; do
    name=$(basename "$f")
    [ -x "$fuzz_dir/${name}_seeds" ] && available+=("$name")
  done < <(find "$fuzz_dir" -maxdepth 1 -type f -perm -u+x -name '*_fuzzer' | sort)
fi
if [ -n "$targets" ]; then
  IFS=, read -r -a selected <<<"$targets"
  for t in "${selected[@]}"; do
    if [[ ! " ${available[*]} " =~ " $t " ]]; then
      echo "fuzz_bench: no target '$t' in $fuzz_dir (have: ${available[*]:-none})" >&2
      exit 3
    fi
  done
else
  selected=("${available[@]}")
fi
if [ ${#selected[@]} -eq 0 ]; then
  echo "fuzz_bench: no fuzz targets in $fuzz_dir; build with -DZCPACK_BUILD_FUZZERS=ON (drop --no-build)" >&2
  exit 3
fi
fuzz_dir=$(cd "$fuzz_dir" && pwd)

# Only a folder this script made is emptied, never one that merely exists.
if [ -e "$out" ] && [ ! -e "$out/.fuzz-bench" ] && [ -n "$(ls -A "$out" 2>/dev/null)" ]; then
  die_usage "--out $out exists and was not made by fuzz_bench.sh; give another folder"
fi
rm -rf "$out"
mkdir -p "$out"
touch "$out/.fuzz-bench"
out=$(cd "$out" && pwd)
per_job=$(((runs + jobs - 1) / jobs))

# The last value of a "stat::NAME: value" line summed (sum) or maximised
# (max) over the given libFuzzer logs.
stat_sum() { local key=$1; shift; cat "$@" 2>/dev/null | awk -v k="stat::$key:" '$1 == k { s += $2 } END { print s + 0 }'; }
stat_max() { local key=$1; shift; cat "$@" 2>/dev/null | awk -v k="stat::$key:" '$1 == k && $2 > m { m = $2 } END { print m + 0 }'; }
# The largest "cov:", "ft:" and "corp:" figures of the status lines.
status_max() { local key=$1; shift; cat "$@" 2>/dev/null |
  awk -v k="$key:" '{ for (i = 1; i < NF; ++i) if ($i == k) { v = $(i + 1); sub(/\/.*/, "", v); if (v + 0 > m) m = v + 0 } } END { print m + 0 }'; }

status=0
records=()
printf '%-28s %12s %10s %7s %8s %7s %9s  %s\n' target executions exec/s cov features corpus wall_s findings
for target in "${selected[@]}"; do
  work=$out/$target
  mkdir -p "$work/corpus" "$work/artifacts" "$work/logs"
  "$fuzz_dir/${target}_seeds" "$work/corpus" >"$work/logs/seeds.log" 2>&1 || {
    echo "fuzz_bench: $target: the seed generator failed (see $work/logs/seeds.log)" >&2
    status=3
    continue
  }
  seeds=$(find "$work/corpus" -type f | wc -l)
  args=(-runs="$per_job" -timeout="$timeout" -rss_limit_mb="$rss_limit_mb"
        -malloc_limit_mb="$malloc_limit_mb" -print_final_stats=1
        -artifact_prefix="$work/artifacts/")
  start=$(date +%s.%N)
  if [ "$jobs" -eq 1 ]; then
    (cd "$work/logs" && "$fuzz_dir/$target" "${args[@]}" "$work/corpus" >fuzz-0.log 2>&1) || true
  else
    # libFuzzer writes each job's output to fuzz-<job>.log in the current folder.
    (cd "$work/logs" && "$fuzz_dir/$target" "${args[@]}" -jobs="$jobs" -workers="$workers" \
       "$work/corpus" >parent.log 2>&1) || true
  fi
  end=$(date +%s.%N)
  logs=("$work"/logs/fuzz-*.log)
  execs=$(stat_sum number_of_executed_units "${logs[@]}")
  wall=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
  rate=$(awk -v n="$execs" -v w="$wall" 'BEGIN { printf "%.0f", (w > 0 ? n / w : 0) }')
  cov=$(status_max cov "${logs[@]}")
  ft=$(status_max ft "${logs[@]}")
  corpus=$(find "$work/corpus" -type f | wc -l)
  peak_rss=$(stat_max peak_rss_mb "${logs[@]}")
  findings=()
  for kind in crash leak timeout oom; do
    n=$(find "$work/artifacts" -maxdepth 1 -type f -name "$kind-*" | wc -l)
    [ "$n" -gt 0 ] && findings+=("$kind:$n")
  done
  # The sanitizer's or libFuzzer's first error line, for the summary.
  first_error=$(grep -h -m1 -E 'ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)|runtime error:' \
                  "${logs[@]}" 2>/dev/null | head -n1 | tr -d '\000-\037' | sed 's/\\/\\\\/g; s/"/\\"/g' || true)
  if [ ${#findings[@]} -gt 0 ]; then
    found=$(IFS=,; echo "${findings[*]}")
    status=1
  elif [ "$execs" -lt "$runs" ]; then
    found="short-run"
    [ "$status" -eq 0 ] && status=3
  else
    found="none"
  fi
  printf '%-28s %12d %10d %7d %8d %7d %9s  %s\n' "$target" "$execs" "$rate" "$cov" "$ft" "$corpus" "$wall" "$found"
  records+=("$(printf '{"target": "%s", "executions": %d, "requested": %d, "jobs": %d, "exec_per_s": %d, "coverage": %d, "features": %d, "seeds": %d, "corpus": %d, "wall_s": %s, "peak_rss_mb": %d, "findings": "%s", "first_error": "%s", "artifacts": "%s"}' \
    "$target" "$execs" "$runs" "$jobs" "$rate" "$cov" "$ft" "$seeds" "$corpus" "$wall" "$peak_rss" "$found" "$first_error" "$work/artifacts")")
  printf '%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n' "$target" "$execs" "$rate" "$cov" "$ft" "$corpus" "$wall" "$found" >>"$out/summary.tsv.body"
done

{
  printf 'target\texecutions\texec_per_s\tcoverage\tfeatures\tcorpus\twall_s\tfindings\n'
  cat "$out/summary.tsv.body" 2>/dev/null || true
} >"$out/summary.tsv"
rm -f "$out/summary.tsv.body"
{
  printf '{"runs": %d, "jobs": %d, "workers": %d, "sanitizers": "address,undefined", "targets": [' "$runs" "$jobs" "$workers"
  sep=""
  for r in "${records[@]}"; do printf '%s\n  %s' "$sep" "$r"; sep=","; done
  printf '\n], "exit_status": %d}\n' "$status"
} >"$out/summary.json"
echo "summary: $out/summary.json (and summary.tsv); corpora, artifacts and logs under $out"
exit "$status"

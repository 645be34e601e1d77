#!/usr/bin/env bash
# Greedy output against the peer, llama.cpp v0.5.0, token by token, on the
# same f16 weights:
#
#   tools/greedy_vs_llamacpp.sh [--models "rand15M rand110M"] [--threads "1 2"] [--n 24]
#                               [--greedy PROGRAM]
#
# For each model, converts the peer's MODEL-f16.gguf to an f16 container and,
# for the prompts 1 / 1,450,2,100 / 1,29871,3681,338,263 at each thread
# count, compares the N ids that $LLAMA_GREEDY (or --greedy, a llama_greedy
# built against another llama.cpp build) generates with zcpack run's.
# Prints one line per case and a total; exits 1 when any case differs.
#
# Note: on CPUs with AVX512-FP16, llama.cpp built with -march=native
# accumulates f16 dot products in binary16, which moves its logits by about
# 1e-3; where two logits tie that closely its greedy choice can differ from
# zcpack's float accumulation (docs/BENCHMARKS.md, "Compute").
set -euo pipefail
cd "$(dirname "$0")/.."
models="rand15M rand110M"
threads="1 2"
n=24
greedy=""
while [ $# -gt 0 ]; do
  case "$1" in
    --models) models=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --n) n=$2; shift 2 ;;
    --greedy) greedy=$2; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "greedy_vs_llamacpp.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
peer_script=${ZCPACK_PEER_SCRIPT:-$(pwd)/../shared/peers/llamacpp.sh}
ZCPACK_EXTRA_PACKAGES="jq" ./tools/install_deps.sh
"$peer_script" >&2
eval "$("$peer_script" --env)"
greedy=${greedy:-$LLAMA_GREEDY}
./tools/build.sh >&2
zcpack=$(pwd)/build/tools/zcpack
work=$(mktemp -d -t zcpack-greedy.XXXXXX)
trap 'rm -rf "$work"' EXIT
same=0 different=0
for m in $models; do
  "$zcpack" convert "$SYNTH/$m-f16.gguf" -o "$work/$m.zcpack" --quant f16 --quiet --force >&2
  for p in 1 1,450,2,100 1,29871,3681,338,263; do
    for t in $threads; do
      # llama_greedy writes logits0.bin into its working folder.
      want=$(cd "$work" && "$greedy" "$SYNTH/$m-f16.gguf" "$p" "$n" "$t" 2>/dev/null |
             awk '$1 == "gen" {$1 = ""; print substr($0, 2)}')
      got=$("$zcpack" run "$work/$m.zcpack" --tokens "$p" -n "$n" --threads "$t" --json |
            jq -r '.generated | map(tostring) | join(" ")')
      if [ -n "$want" ] && [ "$want" = "$got" ]; then
        same=$((same + 1)); echo "same       $m prompt $p, $t threads"
      else
        different=$((different + 1))
        echo "DIFFERENT  $m prompt $p, $t threads"
        echo "  llama.cpp: $want"
        echo "  zcpack:    $got"
      fi
    done
  done
done
echo "greedy: $same same, $different different ($n tokens; $greedy)"
[ "$different" -eq 0 ]

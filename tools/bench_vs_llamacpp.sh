#!/usr/bin/env bash
# Compute against the peer, llama.cpp v0.5.0, on the same weights, in one run.
#
#   tools/bench_vs_llamacpp.sh [--model rand110M] [--threads "1 2"] [--runs 5]
#                              [--prompt 128] [--gen 128] [--ttft 512] [--ttft-model rand1B]
#                              [--quant q4_0] [--output-quant TYPE] [--peer-file FILE.gguf]
#                              [--out DIR]
#
# 1. Builds the peer with ../shared/peers/llamacpp.sh (or $ZCPACK_PEER_SCRIPT):
#    llama.cpp with this machine's SIMD, and random-weight GGUF files.
# 2. Builds zcpack (tools/build.sh) and converts the peer's F16 GGUF of the
#    model to a container (--quant, default q4_0: layers in q4_0, output head
#    in q8_0, or in --output-quant: q4_0 matches the peer's -pure file), so
#    both programs run the same weights. --quant keep repacks the --peer-file
#    itself (a quantized GGUF, say llama-quantize's Q4_K_M) byte for byte:
#    the very same blocks on both sides.
# 3. For each thread count and run, alternating which program goes first:
#      llama.cpp  llama-bench -r 1 on the peer file (default
#                 MODEL-q4_0-pure.gguf: every matrix Q4_0): -p 0 -n GEN for
#                 decode, -p PROMPT -n 0 for the prompt;
#      zcpack     build/tests/benchmarks/decode_benchmark --runs 1: GEN greedy
#                 tokens for decode, one PROMPT-token batch for the prompt.
#    Both warm up in the process before they measure (llama-bench with a
#    warm-up run, decode_benchmark with 16 tokens), and neither counts
#    loading; the page cache holds the files after the first run.
# 4. With --ttft N: warm time to first token of a whole process, start to
#    exit, for an N-token prompt and one generated token, on the --ttft-model
#    weights (default rand1B: the llama-1b shape, made by
#    tools/make_peer_model.py): llama_greedy MODEL-q4_0-pure.gguf ids 0 T
#    (evaluates the prompt, prints the first logits) vs zcpack run --tokens
#    ids -n 1 (evaluates the prompt, samples the first token). Both include
#    starting the process and loading the model.
# Prints medians (min-max) per row and zcpack / llama.cpp ratios (> 1: zcpack
# is faster). Nothing is asserted; the machine's load is printed with it.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

model=rand110M
threads="1 2"
runs=5
prompt=128
gen=128
ttft=0
ttft_model=rand1B
quant=q4_0
output_quant=""
peer_file=""
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --prompt) prompt=$2; shift 2 ;;
    --gen) gen=$2; shift 2 ;;
    --ttft) ttft=$2; shift 2 ;;
    --ttft-model) ttft_model=$2; shift 2 ;;
    --quant) quant=$2; shift 2 ;;
    --output-quant) output_quant=$2; shift 2 ;;
    --peer-file) peer_file=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "bench_vs_llamacpp.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

peer_script=${ZCPACK_PEER_SCRIPT:-$repo/../shared/peers/llamacpp.sh}
if [ ! -x "$peer_script" ]; then
  echo "bench_vs_llamacpp.sh: the peer script $peer_script is missing" >&2
  exit 3
fi
# npm (which the peer script needs) comes with the machine's Node.js.
ZCPACK_EXTRA_PACKAGES="jq python3-numpy" ./tools/install_deps.sh
"$peer_script" >&2
eval "$("$peer_script" --env)"
./tools/build.sh >&2
zcpack=$repo/build/tools/zcpack
bench=$repo/build/tests/benchmarks/decode_benchmark
work=${out:-$(mktemp -d -t zcpack-vs-llamacpp.XXXXXX)}
mkdir -p "$work"

container_for() {  # name -> container path, converted once from the peer's F16 GGUF
  local name=$1 source="$SYNTH/$1-f16.gguf"
  local c="$work/$1.$quant${output_quant:+-head-$output_quant}.zcpack"
  if [ "$quant" = keep ]; then  # the peer's own quantized file, repacked
    source=$peer
    c="$work/$(basename "$peer" .gguf).keep.zcpack"
  fi
  if [ ! -f "$c" ] || [ "$zcpack" -nt "$c" ]; then  # a rebuilt converter converts again
    "$zcpack" convert "$source" -o "$c" --quant "$quant" \
      ${output_quant:+--output-quant "$output_quant"} --quiet --force >&2
  fi
  echo "$c"
}

median() { sort -g | awk '{v[NR]=$1} END {if (NR==0) {print "nan"; exit}
  m = NR % 2 ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2; printf "%.1f (%.1f-%.1f)", m, v[1], v[NR]}'; }
middle() { sort -g | awk '{v[NR]=$1} END {print NR % 2 ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }

ids() { seq -s, 1 "$1"; }  # 1,2,...,n: valid ids in every vocabulary here

peer=${peer_file:-$SYNTH/$model-q4_0-pure.gguf}
container=$(container_for "$model")
declare -A samples
for ((r = 0; r < runs; r++)); do
  for t in $threads; do
    for order in 0 1; do
      if (( (r + order) % 2 == 0 )); then
        v=$("$LLAMA_BIN/llama-bench" -m "$peer" -t "$t" -p 0 -n "$gen" -r 1 -o json 2>/dev/null | jq '.[0].avg_ts')
        samples[llama_decode_$t]+="$v "
        v=$("$LLAMA_BIN/llama-bench" -m "$peer" -t "$t" -p "$prompt" -n 0 -r 1 -o json 2>/dev/null | jq '.[0].avg_ts')
        samples[llama_prompt_$t]+="$v "
      else
        report=$("$bench" "$container" --threads "$t" --runs 1 --opens 1 --tokens "$gen" \
          --prompt "$prompt")
        samples[zcpack_decode_$t]+="$(awk '$1 == "decode" {print $2}' <<<"$report") "
        samples[zcpack_prompt_$t]+="$(awk '$1 == "prompt" {print $2}' <<<"$report") "
      fi
    done
  done
done

echo "zcpack $(git -C "$repo" rev-parse --short HEAD) vs llama.cpp v0.5.0 on $(uname -m), $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "zcpack: $container ($(du -m "$container" | cut -f1) MiB)"
echo "llama.cpp: $peer ($(du -m "$peer" | cut -f1) MiB)"
echo "runs: $runs per row, alternating; medians (min-max), tokens/s"
printf '%-28s %-22s %-22s %s\n' "test" "zcpack" "llama.cpp" "ratio"
for t in $threads; do
  for kind in decode prompt; do
    label="$kind $( [ $kind = decode ] && echo "$gen" || echo "$prompt"), $t threads"
    z=${samples[zcpack_${kind}_$t]}
    l=${samples[llama_${kind}_$t]}
    ratio=$(awk -v a="$(tr ' ' '\n' <<<"$z" | grep . | middle)" -v b="$(tr ' ' '\n' <<<"$l" | grep . | middle)" \
      'BEGIN {printf "%.2f", a / b}')
    printf '%-28s %-22s %-22s %s\n' "$label" "$(tr ' ' '\n' <<<"$z" | grep . | median)" \
      "$(tr ' ' '\n' <<<"$l" | grep . | median)" "$ratio"
  done
done

if [ "$ttft" -gt 0 ]; then
  gguf16="$SYNTH/$ttft_model-f16.gguf"
  pure="$SYNTH/$ttft_model-q4_0-pure.gguf"
  if [ ! -f "$gguf16" ]; then
    shape=llama-1b
    [ "$ttft_model" = rand1B ] || { echo "bench_vs_llamacpp.sh: $gguf16 is missing" >&2; exit 3; }
    /usr/bin/python3 "$repo/tools/make_peer_model.py" "$shape" "$gguf16" >&2
  fi
  [ -f "$pure" ] || "$LLAMA_BIN/llama-quantize" --pure "$gguf16" "$pure" Q4_0 "$(nproc)" >/dev/null 2>&1
  big=$(container_for "$ttft_model")
  long_ids=$(ids "$ttft")
  now() { date +%s%N; }
  for t in $threads; do
    zs="" ls=""
    for ((r = 0; r < runs; r++)); do
      for order in 0 1; do
        start=$(now)
        if (( (r + order) % 2 == 0 )); then
          # 0 generated: it evaluates the prompt, prints the first logits, exits
          # (it writes logits0.bin into the working folder).
          (cd "$work" && "$LLAMA_GREEDY" "$pure" "$long_ids" 0 "$t" >/dev/null 2>&1)
          ls+="$(( ($(now) - start) / 1000000 )) "
        else
          "$zcpack" run "$big" --tokens "$long_ids" -n 1 --threads "$t" >/dev/null
          zs+="$(( ($(now) - start) / 1000000 )) "
        fi
      done
    done
    zm=$(tr ' ' '\n' <<<"$zs" | grep . | middle)
    lm=$(tr ' ' '\n' <<<"$ls" | grep . | middle)
    printf '%-28s %-22s %-22s %s\n' "ttft $ttft ($ttft_model), $t thr" \
      "$(tr ' ' '\n' <<<"$zs" | grep . | median) ms" "$(tr ' ' '\n' <<<"$ls" | grep . | median) ms" \
      "$(awk -v a="$zm" -v b="$lm" 'BEGIN {printf "%.2f", b / a}')"
  done
  echo "ttft: whole process, start to exit, warm page cache; ratio = llama.cpp ms / zcpack ms"
fi
echo "files: $work"

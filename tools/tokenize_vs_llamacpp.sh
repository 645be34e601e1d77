#!/usr/bin/env bash
# Tokenizer parity and speed against the peer, llama.cpp v0.5.0, at scale:
#
#   tools/tokenize_vs_llamacpp.sh [--vocabs "llama-spm llama-bpe ..."]
#                                 [--bytes 1048576] [--keep DIR]
#
# Builds one text of exactly --bytes bytes (default 1 MiB), deterministically
# and without the network: this checkout's tracked C++ sources, CMake files
# and Markdown (in byte order of their paths), each followed by one of the
# multilingual .inp files of tests/data/vocab in turn, repeated as needed and
# cut to size (the cut may split a UTF-8 sequence: both tokenizers must cope).
# For each vocabulary (tests/data/vocab/ggml-vocab-NAME.gguf; default: all
# ten there) it runs
#
#   llama-tokenize -m VOCAB -f TEXT --ids --no-bos --no-parse-special --no-escape --log-disable
#   zcpack tokenize VOCAB --file TEXT
#
# (no BOS, special tokens as text, the file's bytes verbatim) and compares the
# ids. Prints one line per vocabulary (identical or the first difference, the
# token counts and each program's wall time, which includes loading the
# vocabulary) and exits 1 when any differs. --keep DIR keeps the text and the
# id lists there. Single-thread tokenizer throughput without the loading is
# tests/benchmarks/tokenizer_benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
vocabs="llama-spm llama-bpe qwen2 phi-3 gpt-2 starcoder refact mpt falcon deepseek-coder"
bytes=1048576
keep=""
while [ $# -gt 0 ]; do
  case "$1" in
    --vocabs) vocabs=$2; shift 2 ;;
    --bytes) bytes=$2; shift 2 ;;
    --keep) keep=$2; shift 2 ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "tokenize_vs_llamacpp.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
peer_script=${ZCPACK_PEER_SCRIPT:-$(pwd)/../shared/peers/llamacpp.sh}
"$peer_script" >&2
eval "$("$peer_script" --env)"
if [ ! -x "${ZCPACK_BIN:-}" ]; then
  ./tools/build.sh >&2
fi
zcpack=${ZCPACK_BIN:-$(pwd)/build/tools/zcpack}
if [ -n "$keep" ]; then
  mkdir -p "$keep"
  work=$keep
else
  work=$(mktemp -d -t zcpack-tokenize.XXXXXX)
  trap 'rm -rf "$work"' EXIT
fi

# The text: sources and docs interleaved with the multilingual test texts.
text="$work/text.txt"
mapfile -t inputs < <(ls tests/data/vocab/*.inp | LC_ALL=C sort)
mapfile -t files < <(git ls-files '*.cc' '*.h' '*.cmake' 'CMakeLists.txt' '*.md' | LC_ALL=C sort)
: >"$text.full"
i=0
while [ "$(stat -c %s "$text.full")" -lt "$bytes" ]; do
  for f in "${files[@]}"; do
    cat "$f" "${inputs[$((i % ${#inputs[@]}))]}" >>"$text.full"
    i=$((i + 1))
    [ "$(stat -c %s "$text.full")" -ge "$bytes" ] && break
  done
done
head -c "$bytes" "$text.full" >"$text"
rm -f "$text.full"
echo "text: $bytes bytes, $(sha256sum "$text" | cut -c1-16) (sha256 prefix)"

different=0
for v in $vocabs; do
  vocab=tests/data/vocab/ggml-vocab-$v.gguf
  start=$(date +%s.%N)
  "$LLAMA_BIN/llama-tokenize" -m "$vocab" -f "$text" --ids --no-bos --no-parse-special \
    --no-escape --log-disable 2>/dev/null | tr -d '[],' | tr ' ' '\n' | sed '/^$/d' >"$work/$v.llama"
  mid=$(date +%s.%N)
  "$zcpack" tokenize "$vocab" --file "$text" | tr ' ' '\n' | sed '/^$/d' >"$work/$v.zcpack"
  end=$(date +%s.%N)
  n_llama=$(wc -l <"$work/$v.llama")
  n_zcpack=$(wc -l <"$work/$v.zcpack")
  times=$(awk -v a="$start" -v b="$mid" -v c="$end" \
    'BEGIN { printf "llama-tokenize %.2f s, zcpack tokenize %.2f s", b - a, c - b }')
  if cmp -s "$work/$v.llama" "$work/$v.zcpack"; then
    echo "identical  $v: $n_zcpack tokens; $times"
  else
    different=$((different + 1))
    first=$(cmp "$work/$v.llama" "$work/$v.zcpack" 2>/dev/null | awk '{print $NF}' || true)
    echo "DIFFERENT  $v: llama.cpp $n_llama tokens, zcpack $n_zcpack; first difference on line $first; $times"
  fi
done
echo "$different of $(echo $vocabs | wc -w) vocabularies differ"
[ "$different" -eq 0 ]

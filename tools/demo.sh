#!/usr/bin/env bash
# Installs what is missing, builds, and shows the main job on a built-in model:
# synthesize a stories15M-shaped checkpoint, convert it to a Q4 container,
# verify it against its source, inspect it, run it, and compare the classic
# loader's open time with zcpack's on the same file. Then text in and text
# out: the same checkpoint converted with a real vocabulary carried beside it
# (`convert --tokenizer`; zcpack synth writes weights, not a tokenizer), run
# from a text prompt. The weights are random, so that text is meaningless.
set -euo pipefail
cd "$(dirname "$0")/.."
./tools/build.sh
zcpack=./build/tools/zcpack
work=${ZCPACK_DEMO_DIR:-$(mktemp -d -t zcpack-demo.XXXXXX)}
shape=${ZCPACK_DEMO_SHAPE:-stories15m}
container="$work/$shape.q4_0.zcpack"

echo "== zcpack synth --shape $shape (a Hugging Face-style checkpoint)"
"$zcpack" synth --shape "$shape" --out "$work/$shape" --force
echo
echo "== zcpack convert (Q4_0, tensors in forward-pass order, 16 KiB aligned)"
"$zcpack" convert "$work/$shape" -o "$container" --quant q4_0 --force
echo
echo "== zcpack verify (structure, every checksum and padding byte, error against the source)"
"$zcpack" verify "$container" --against "$work/$shape"
echo
echo "== zcpack inspect (first rows)"
"$zcpack" inspect "$container" --checksums | sed -n 1,16p
echo "   ..."
"$zcpack" inspect "$container" | tail -n 4
echo
echo "== zcpack run: zero-copy open, then greedy generation from token ids"
"$zcpack" run "$container" --tokens 1,450,4996,338 -n 24
echo
echo "== the same with the classic loader (read the whole file, copy every tensor)"
"$zcpack" run "$container" --tokens 1,450,4996,338 -n 24 --loader classic
echo
# Text: synth checkpoints carry no tokenizer, so the demo carries llama.cpp's
# vocabulary-only GGUF of the shape's vocabulary (stories15M and Llama 2 use
# Llama 2's 32000-token SentencePiece vocabulary; Llama 3.2 1B uses Llama 3's
# byte-level BPE one) into a second container with --tokenizer.
case "$shape" in
  stories15m|stories110m|llama-7b) vocab=tests/data/vocab/ggml-vocab-llama-spm.gguf ;;
  llama-1b) vocab=tests/data/vocab/ggml-vocab-llama-bpe.gguf ;;
  *) vocab= ;;
esac
if [[ -n "$vocab" && -f "$vocab" ]]; then
  text_container="$work/$shape.text.q4_0.zcpack"
  echo "== zcpack convert --tokenizer $(basename "$vocab") (the same weights, carrying a vocabulary)"
  "$zcpack" convert "$work/$shape" -o "$text_container" --quant q4_0 --tokenizer "$vocab" \
    --force --quiet
  "$zcpack" inspect "$text_container" | grep '^tokenizer' || true
  echo
  echo "== zcpack run --prompt: text in, text streamed out until end-of-generation or -n"
  echo "   NOTE: the weights are random (zcpack synth), so the text is meaningless: this"
  echo "   shows the tokenizer, the streaming and the stop, not a language model."
  "$zcpack" run "$text_container" --prompt "Once upon a time" -n 32
  echo
  echo "== zcpack run --chat: renders the model's chat template (llama-3, ChatML, llama-2)"
  if ! "$zcpack" run "$text_container" --chat "Tell me a story." -n 32; then
    echo "   (this vocabulary carries no chat template, and zcpack says so rather than guess"
    echo "   one; a chat model's GGUF or tokenizer_config carries its own)"
  fi
  echo
else
  echo "== text in, text out: no vocabulary of the $shape shape's size in tests/data/vocab;"
  echo "   run a container converted from a GGUF model (which carries its tokenizer) with"
  echo "   zcpack run FILE --prompt \"Once upon a time\""
  echo
fi
echo "demo files are in $work"

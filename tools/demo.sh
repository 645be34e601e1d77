#!/usr/bin/env bash
# Installs what is missing, builds, and shows the main job on a built-in model:
# synthesize a stories15M-shaped checkpoint, convert it to a Q4 container,
# verify it against its source, inspect it, run it, and compare the classic
# loader's open time with zcpack's on the same file.
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
echo "demo files are in $work"

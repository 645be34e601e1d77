#!/usr/bin/env bash
# Installs what is missing, builds, and shows the main job on a built-in model:
# synthesize a stories15M-shaped checkpoint, convert it to a Q4 container, and
# inspect the result.
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
echo "== zcpack inspect (first rows)"
"$zcpack" inspect "$container" --checksums | head -n 16
echo "   ..."
"$zcpack" inspect "$container" | tail -n 4
echo
echo "demo files are in $work"

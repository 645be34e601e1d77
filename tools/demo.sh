#!/usr/bin/env bash
# Installs what is missing, builds, and shows the main job on a built-in model:
# synthesize a small llama-shaped checkpoint and inspect the result.
set -euo pipefail
cd "$(dirname "$0")/.."
./tools/build.sh
zcpack=./build/tools/zcpack
work=${ZCPACK_DEMO_DIR:-$(mktemp -d -t zcpack-demo.XXXXXX)}
shape=${ZCPACK_DEMO_SHAPE:-stories15m}

echo "== zcpack synth --shape $shape (a Hugging Face-style checkpoint)"
"$zcpack" synth --shape "$shape" --out "$work/$shape" --force
echo
echo "demo files are in $work"

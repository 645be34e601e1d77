#!/usr/bin/env bash
# Configures and builds zcpack (Release) into ./build. Used by test.sh and demo.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
./tools/install_deps.sh
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build build -j"$jobs"

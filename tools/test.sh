#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite:
#  1. the GoogleTest suites and CLI end-to-end tests (Release build, ./build);
#  2. the libFuzzer targets under ASan+UBSan for a bounded time from seed
#     corpora of valid files (clang build, ./build-fuzz).
# Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
./tools/build.sh
jobs=$(nproc)
ctest --test-dir build --output-on-failure -j"$jobs" -LE fuzz

if command -v clang++ >/dev/null 2>&1; then
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DZCPACK_BUILD_FUZZERS=ON -DZCPACK_SANITIZE=ON -DZCPACK_BUILD_TESTS=OFF \
    -DZCPACK_BUILD_BENCHMARKS=OFF >/dev/null
  cmake --build build-fuzz -j"$jobs" --target zcpack_fuzzers
  ctest --test-dir build-fuzz --output-on-failure -j"$jobs" -L fuzz
else
  echo "test.sh: clang++ not found; fuzz targets skipped" >&2
fi

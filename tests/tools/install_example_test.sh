#!/usr/bin/env bash
# Installs the zcpack build into a temporary prefix, then configures and
# builds examples/hello_runtime as a separate CMake project against that
# installed package (find_package(zcpack), zcpack_add_model()), runs it, and
# checks that the model step reruns only when its inputs change and that the
# pkg-config file resolves.
# Usage: install_example_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
work=$(mktemp -d -t zcpack-install.XXXXXX)
trap 'rm -rf "$work"' EXIT

cmake --install "$build" --prefix "$work/prefix" >/dev/null
zcpack="$work/prefix/bin/zcpack"
"$zcpack" synth --shape tiny --out "$work/model" >/dev/null

cmake -S "$src/examples/hello_runtime" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$work/prefix" -DMODEL_SOURCE="$work/model" >/dev/null
cmake --build "$work/build" -j2 >"$work/first.log"
grep -q "converting and verifying hello_model" "$work/first.log"
"$work/build/hello" "$work/build/model.zcpack" | tee "$work/hello.out"
grep -q "generated:" "$work/hello.out"
"$work/build/hello_c" "$work/build/model.zcpack" | tee "$work/hello_c.out"
grep -q "generated:" "$work/hello_c.out"
# Both APIs generate the same greedy tokens.
[ "$(grep -o 'generated:.*' "$work/hello.out")" = "$(grep -o 'generated:.*' "$work/hello_c.out")" ]

# Nothing changed: the model step does not run again.
cmake --build "$work/build" -j2 >"$work/second.log"
if grep -q "converting and verifying" "$work/second.log"; then
  echo "model step reran without a change" >&2
  exit 1
fi
# The source changed: it runs again.
sleep 1
touch "$work/model/model.safetensors"
cmake --build "$work/build" -j2 >"$work/third.log"
grep -q "converting and verifying hello_model" "$work/third.log"

PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig" pkg-config --cflags --libs zcpack | grep -q -- "-lzcpack_runtime"
echo "install example: OK"

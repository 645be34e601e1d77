#!/usr/bin/env bash
# The sibling of install_example_test.sh for pkg-config users: installs the
# zcpack build into a temporary prefix, moves the whole prefix elsewhere (the
# .pc file must find its files from where it lies, not from the prefix the
# build was configured with), then builds examples/hello_runtime with the
# compiler alone and the flags pkg-config gives (the C++ program with
# `--libs`, the C one with `--libs --static`: only static libraries are
# installed, so either must list every library they use), and runs both on a
# converted model.
# Usage: install_pkgconfig_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
work=$(mktemp -d -t zcpack-pkgconfig.XXXXXX)
trap 'rm -rf "$work"' EXIT

cmake --install "$build" --prefix "$work/installed" >/dev/null
mv "$work/installed" "$work/moved"
prefix="$work/moved"
pc_dir=$(dirname "$(find "$prefix" -name zcpack.pc)")
export PKG_CONFIG_PATH="$pc_dir"

# The prefix pkg-config reports is the moved one.
reported=$(pkg-config --variable=prefix zcpack)
if [ "$(realpath "$reported")" != "$(realpath "$prefix")" ]; then
  echo "pkg-config prefix is $reported, expected $prefix" >&2
  exit 1
fi

"$prefix/bin/zcpack" synth --shape tiny --out "$work/model" >/dev/null
"$prefix/bin/zcpack" convert "$work/model" -o "$work/model.zcpack" --quiet

# shellcheck disable=SC2046  # word splitting of the flags is the point
c++ -std=c++20 -O1 -o "$work/hello" "$src/examples/hello_runtime/main.cc" \
  $(pkg-config --cflags zcpack) $(pkg-config --libs zcpack)
# shellcheck disable=SC2046
cc -O1 -c -o "$work/hello_c.o" "$src/examples/hello_runtime/hello.c" $(pkg-config --cflags zcpack)
# shellcheck disable=SC2046
c++ -o "$work/hello_c" "$work/hello_c.o" $(pkg-config --libs --static zcpack)

"$work/hello" "$work/model.zcpack" | tee "$work/hello.out"
"$work/hello_c" "$work/model.zcpack" | tee "$work/hello_c.out"
grep -q "generated:" "$work/hello.out"
# Both APIs generate the same greedy tokens.
[ "$(grep -o 'generated:.*' "$work/hello.out")" = "$(grep -o 'generated:.*' "$work/hello_c.out")" ]
echo "install through pkg-config: OK"

#!/usr/bin/env bash
# Installs the Debian packages zcpack needs to build and test, if missing.
# Every dependency is a Debian package; README.md says why each is there.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libabsl-dev libprotobuf-dev protobuf-compiler libzstd-dev libeigen3-dev
  libgtest-dev libgmock-dev libbenchmark-dev libxxhash-dev nlohmann-json3-dev
  libpcre2-dev               # the tokenizers' Unicode-aware pre-tokenizer expressions
  clang libclang-rt-14-dev   # fuzz targets with ASan+UBSan in the test suite
  gnuplot-nox                # zcpack bench --plot renders the memory timeline
)
if [ "${ZCPACK_EXTRA_PACKAGES:-}" != "" ]; then
  read -r -a extra <<<"$ZCPACK_EXTRA_PACKAGES"
  packages+=("${extra[@]}")
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install_deps: installing ${missing[*]}"
sudo=()
if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"

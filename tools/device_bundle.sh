#!/usr/bin/env bash
# Packs what the thread-scaling comparison needs on a bare machine (the lent
# 16-core host has none of our Debian libraries) into build-device/, and
# writes build-device/run.sh, which runs there.
#
#   tools/device_bundle.sh          # after tools/build.sh and the peer script
#   (on the other machine, from the repository root, with build-device carried)
#   build-device/run.sh [THREADS...] > results.txt     # default: 4 8 16
#
# Carried: zcpack and decode_benchmark from build/, llama.cpp's llama-bench,
# llama-quantize and llama2.c converter from $ZCPACK_PEERS, the peer's
# gen_llama2c and SPM vocabulary, every shared library they load and the
# dynamic loader (programs start as lib/ld-linux-x86-64.so.2 --library-path
# lib bin/PROGRAM). The models are made there, as the peer script makes them
# (only 64 MiB travels): rand110M, stories110M-shaped random weights, F16 and
# llama-quantize --pure Q4_0; zcpack converts the F16 file twice, with its
# default q8_0 output head and with --output-quant q4_0 (the peer's bytes).
# run.sh prints, per thread count, llama-bench and decode_benchmark decode
# and prompt tokens/s, alternating, medians of 3.
#
#   tools/device_bundle.sh --fuzz   # after a fuzz build in build-fuzz/
#                                   # (tools/test.sh or tools/fuzz_bench.sh)
#   (there) build-device-fuzz/run.sh [fuzz_bench.sh options] > results.txt
#
# --fuzz packs the libFuzzer targets and their seed generators from
# build-fuzz/tests/fuzz, their shared libraries and tools/fuzz_bench.sh into
# build-device-fuzz/. libFuzzer's -jobs starts the target again by its own
# path, so the programs cannot go through the loader by hand: patchelf points
# them at the carried loader and libraries under /tmp/zcpack-fuzz, where
# run.sh copies the bundle first.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = --fuzz ]; then
  command -v patchelf >/dev/null || apt-get install -y patchelf >/dev/null
  out=build-device-fuzz
  home=/tmp/zcpack-fuzz
  rm -rf "$out"
  mkdir -p "$out/build-fuzz/tests/fuzz" "$out/lib" "$out/tools"
  for p in build-fuzz/tests/fuzz/*_fuzzer build-fuzz/tests/fuzz/*_fuzzer_seeds; do
    cp "$p" "$out/build-fuzz/tests/fuzz/"
    ldd "$p" | awk '/=> \// {print $3}' | while read -r lib; do cp -L "$lib" "$out/lib/"; done
    # Debug information would not fit in the 64 MiB that travels; function
    # names stay for the sanitizers' reports.
    strip --strip-debug "$out/build-fuzz/tests/fuzz/$(basename "$p")"
    patchelf --set-interpreter "$home/lib/ld-linux-x86-64.so.2" --set-rpath "$home/lib" \
      "$out/build-fuzz/tests/fuzz/$(basename "$p")"
  done
  cp -L /lib64/ld-linux-x86-64.so.2 "$out/lib/"
  cp tools/fuzz_bench.sh "$out/tools/"
  {
    echo '#!/usr/bin/env bash'
    echo '# Runs on the lent machine: see tools/device_bundle.sh --fuzz.'
    echo 'set -euo pipefail'
    echo "rm -rf $home && cp -r \"\$(cd \"\$(dirname \"\$0\")\" && pwd)\" $home"
    echo 'echo "host: $(nproc) cores, $(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2)"'
    echo "cd $home && tools/fuzz_bench.sh --no-build \"\$@\""
  } > "$out/run.sh"
  chmod +x "$out/run.sh"
  du -sh "$out"
  exit 0
fi
peer_script=${ZCPACK_PEER_SCRIPT:-$(pwd)/../shared/peers/llamacpp.sh}
eval "$("$peer_script" --env)"
out=build-device
rm -rf "$out"
mkdir -p "$out/bin" "$out/lib" "$out/share"
programs=(build/tools/zcpack build/tests/benchmarks/decode_benchmark
          "$LLAMA_BIN/llama-bench" "$LLAMA_BIN/llama-quantize"
          "$LLAMA_BIN/llama-convert-llama2c-to-ggml" "$SYNTH/gen_llama2c")
for p in "${programs[@]}"; do
  cp "$p" "$out/bin/"
  ldd "$p" | awk '/=> \// {print $3} /^\t\/lib64/ {print $1}' | while read -r lib; do
    cp -L "$lib" "$out/lib/" 2>/dev/null || true
  done
done
cp -L /lib64/ld-linux-x86-64.so.2 "$out/lib/"
cp "$ZCPACK_PEERS/llama.cpp/models/ggml-vocab-llama-spm.gguf" "$out/share/"

cat > "$out/run.sh" <<'EOF'
#!/usr/bin/env bash
# Runs on the lent machine: see tools/device_bundle.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
run() { "$here/lib/ld-linux-x86-64.so.2" --library-path "$here/lib" "$here/bin/$1" "${@:2}"; }
threads=${*:-4 8 16}
work=${TMPDIR:-/tmp}/zcpack-device
mkdir -p "$work" && cd "$work"
echo "host: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
grep -o -w -E 'avx512f|avx512_vnni|avx_vnni|amx_tile' /proc/cpuinfo | sort -u | tr '\n' ' '; echo
if [ ! -f rand110M-q4_0-pure.gguf ]; then
  run gen_llama2c rand110M.bin 768 2048 12 12 12 32000 1024 2
  run llama-convert-llama2c-to-ggml --copy-vocab-from-model "$here/share/ggml-vocab-llama-spm.gguf" \
    --llama2c-model rand110M.bin --llama2c-output-model rand110M-f32.gguf >/dev/null 2>&1
  run llama-quantize rand110M-f32.gguf rand110M-f16.gguf F16 "$(nproc)" >/dev/null 2>&1
  run llama-quantize --pure rand110M-f32.gguf rand110M-q4_0-pure.gguf Q4_0 "$(nproc)" >/dev/null 2>&1
  rm -f rand110M.bin rand110M-f32.gguf
fi
run zcpack convert rand110M-f16.gguf -o r110.q4_0.zcpack --quiet --force
run zcpack convert rand110M-f16.gguf -o r110.pure.zcpack --output-quant q4_0 --quiet --force
median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2 ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2)}'; }
printf '%-8s %-7s %12s %12s %12s %8s %8s\n' threads test llama.cpp "zcpack" "zcpack-pure" ratio ratio-pure
for t in $threads; do
  for kind in decode prompt; do
    l="" z="" zp=""
    for r in 1 2 3; do
      if [ $kind = decode ]; then a=(-p 0 -n 128); else a=(-p 128 -n 0); fi
      l+="$(run llama-bench -m rand110M-q4_0-pure.gguf -t "$t" "${a[@]}" -r 1 -o csv 2>/dev/null |
            tail -1 | awk -F, '{gsub(/"/, "", $(NF-1)); print $(NF-1)}') "
      for f in r110.q4_0 r110.pure; do
        v=$(run decode_benchmark "$f.zcpack" --threads "$t" --runs 1 --opens 1 --tokens 128 \
              --prompt 128 | awk -v k=$kind '$1 == k {print $2}')
        if [ $f = r110.q4_0 ]; then z+="$v "; else zp+="$v "; fi
      done
    done
    lm=$(tr ' ' '\n' <<<"$l" | grep . | median)
    zm=$(tr ' ' '\n' <<<"$z" | grep . | median)
    pm=$(tr ' ' '\n' <<<"$zp" | grep . | median)
    printf '%-8s %-7s %12.1f %12.1f %12.1f %8.2f %8.2f\n' "$t" "$kind" "$lm" "$zm" "$pm" \
      "$(awk -v a="$zm" -v b="$lm" 'BEGIN {print a / b}')" "$(awk -v a="$pm" -v b="$lm" 'BEGIN {print a / b}')"
  done
done
EOF
chmod +x "$out/run.sh"
du -sh "$out"

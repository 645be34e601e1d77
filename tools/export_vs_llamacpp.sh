#!/usr/bin/env bash
# Exported GGUF files against the peer, llama.cpp v0.5.0: llama.cpp loads
# what `zcpack export` writes and generates the same greedy ids.
#
#   tools/export_vs_llamacpp.sh [--models "rand15M-f16 rand110M-f16 rand110M-q4_0-pure"]
#                               [--shapes "tiny stories15m"] [--n 24] [--threads 2]
#                               [--zcpack PROGRAM] [--no-build]
#
# For each peer GGUF file ($SYNTH/MODEL.gguf): zcpack convert (--quant keep,
# so that the blocks are the file's) then zcpack export; llama_greedy's N ids
# on the exported file must equal its ids on the original, for the prompts
# 1 and 1,450,2,100. Also checks that every tensor offset of the exported file
# is a multiple of its general.alignment (read from the GGUF tensor infos
# here, not through zcpack), and that converting the export again gives the
# first container's bytes.
# For each `zcpack synth` shape: synth, convert (--quant f16), export; llama.cpp's
# ids on the exported file must equal `zcpack run`'s on the container.
# Prints one line per case and a total; exits 1 when any case differs.
set -euo pipefail
cd "$(dirname "$0")/.."
models="rand15M-f16 rand110M-f16 rand110M-q4_0-pure"
shapes="tiny stories15m"
n=24
threads=2
zcpack=""
build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --models) models=$2; shift 2 ;;
    --shapes) shapes=$2; shift 2 ;;
    --n) n=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --zcpack) zcpack=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "export_vs_llamacpp.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
peer_script=${ZCPACK_PEER_SCRIPT:-$(pwd)/../shared/peers/llamacpp.sh}
if [ "$build" = 1 ]; then
  ZCPACK_EXTRA_PACKAGES="python3" ./tools/install_deps.sh
  "$peer_script" >&2
  ./tools/build.sh >&2
fi
eval "$("$peer_script" --env)"
zcpack=${zcpack:-$(pwd)/build/tools/zcpack}
work=$(mktemp -d -t zcpack-export.XXXXXX)
trap 'rm -rf "$work"' EXIT

# The offsets of every tensor in a GGUF file that are not multiples of its
# general.alignment, one per line ("name offset"); nothing when all are.
misaligned() {
  python3 - "$1" <<'PY'
import struct, sys
d = open(sys.argv[1], 'rb').read()
p = 4
def rd(f):
    global p
    v = struct.unpack_from('<' + f, d, p); p += struct.calcsize('<' + f); return v[0]
def rs():
    global p
    n = rd('Q'); s = d[p:p + n]; p += n; return s.decode('utf-8', 'replace')
W = {0: 'B', 1: 'b', 2: 'H', 3: 'h', 4: 'I', 5: 'i', 6: 'f', 7: 'B', 10: 'Q', 11: 'q', 12: 'd'}
def val(t):
    if t == 8: return rs()
    if t == 9:
        et = rd('I'); k = rd('Q'); return [val(et) for _ in range(k)]
    return rd(W[t])
rd('I'); nt = rd('Q'); nkv = rd('Q'); align = 32
for _ in range(nkv):
    k = rs(); v = val(rd('I'))
    if k == 'general.alignment': align = v
infos = []
for _ in range(nt):
    name = rs(); nd = rd('I'); [rd('Q') for _ in range(nd)]; rd('I'); infos.append((name, rd('Q')))
start = (p + align - 1) // align * align
for name, off in infos:
    if (start + off) % align: print(name, start + off)
print('alignment', align, file=sys.stderr)
PY
}

same=0 different=0
check() {  # label want got
  if [ -n "$2" ] && [ "$2" = "$3" ]; then
    same=$((same + 1)); echo "same       $1"
  else
    different=$((different + 1)); echo "DIFFERENT  $1"; echo "  want: $2"; echo "  got:  $3"
  fi
}
greedy() {  # model prompt
  (cd "$work" && "$LLAMA_GREEDY" "$1" "$2" "$n" "$threads" 2>/dev/null |
   awk '$1 == "gen" {$1 = ""; print substr($0, 2)}')
}
for m in $models; do
  "$zcpack" convert "$SYNTH/$m.gguf" -o "$work/$m.zcpack" --quant keep --quiet --force >&2
  "$zcpack" export "$work/$m.zcpack" -o "$work/$m.export.gguf" --quiet --force >&2
  bad=$(misaligned "$work/$m.export.gguf" 2>/dev/null)
  check "$m: tensor offsets aligned" "none" "${bad:-none}"
  "$zcpack" convert "$work/$m.export.gguf" -o "$work/$m.again.zcpack" --quant keep --quiet --force >&2
  check "$m: GGUF -> container -> GGUF -> container, same container bytes" \
    "$(sha256sum < "$work/$m.zcpack")" "$(sha256sum < "$work/$m.again.zcpack")"
  for p in 1 1,450,2,100; do
    check "$m prompt $p: llama.cpp on the export = llama.cpp on the original" \
      "$(greedy "$SYNTH/$m.gguf" "$p")" "$(greedy "$work/$m.export.gguf" "$p")"
  done
  rm -f "$work/$m.zcpack" "$work/$m.again.zcpack" "$work/$m.export.gguf"
done
for s in $shapes; do
  "$zcpack" synth --shape "$s" --out "$work/$s" --force >/dev/null
  "$zcpack" convert "$work/$s" -o "$work/$s.zcpack" --quant f16 --quiet --force >&2
  "$zcpack" export "$work/$s.zcpack" -o "$work/$s.export.gguf" --quiet --force >&2
  bad=$(misaligned "$work/$s.export.gguf" 2>/dev/null)
  check "synth $s: tensor offsets aligned" "none" "${bad:-none}"
  for p in 1 1,450,2,100; do
    got=$("$zcpack" run "$work/$s.zcpack" --tokens "$p" -n "$n" --threads "$threads" --json |
          python3 -c 'import json,sys; print(" ".join(map(str, json.load(sys.stdin)["generated"])))')
    check "synth $s prompt $p: llama.cpp on the export = zcpack run on the container" \
      "$got" "$(greedy "$work/$s.export.gguf" "$p")"
  done
  rm -rf "$work/$s" "$work/$s.zcpack" "$work/$s.export.gguf"
done
echo "export: $same same, $different different ($n tokens, $threads threads; $LLAMA_GREEDY)"
[ "$different" -eq 0 ]

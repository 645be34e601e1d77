// The 256-bit integer kernels (kernels_int_ymm.inc), once per dot-product
// instruction: AVX2 (vpmaddubsw), AVX-VNNI and AVX-512 VL VNNI (vpdpbusd).
#include "kernels_int.h"

#if defined(__x86_64__) || defined(__i386__)

#include <algorithm>
#include <cstring>

#include "kernels_internal.h"
#include "zcpack/format/format_constants.h"
#include "zcpack/format/half.h"
#include "zcpack/format/row_groups.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

namespace zcpack::runtime::kernels_internal {
namespace {

#define ZCPACK_YMM_NS avx2
#define ZCPACK_YMM_TARGET "avx2,fma,f16c"
#define ZCPACK_YMM_DOT 0
#include "kernels_int_ymm.inc"
#undef ZCPACK_YMM_NS
#undef ZCPACK_YMM_TARGET
#undef ZCPACK_YMM_DOT

#define ZCPACK_YMM_NS avx_vnni
#define ZCPACK_YMM_TARGET "avx2,fma,f16c,avxvnni"
#define ZCPACK_YMM_DOT 1
#include "kernels_int_ymm.inc"
#undef ZCPACK_YMM_NS
#undef ZCPACK_YMM_TARGET
#undef ZCPACK_YMM_DOT

#define ZCPACK_YMM_NS avx512_vnni_ymm
#define ZCPACK_YMM_TARGET "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"
#define ZCPACK_YMM_DOT 2
#include "kernels_int_ymm.inc"
#undef ZCPACK_YMM_NS
#undef ZCPACK_YMM_TARGET
#undef ZCPACK_YMM_DOT

// The table of one copy: row-major and row-grouped kernels for each type
// (row-major only for q4_1, q5_0 and q5_1).
#define ZCPACK_YMM_TABLE(ns, isa)                                                            \
  DotKernels {                                                                               \
    isa, ns::kLanes, ns::Quantize, ns::Rows<ns::Kind::kQ4_0, format::LAYOUT_ROW_MAJOR>,      \
        ns::Rows<ns::Kind::kQ4_K, format::LAYOUT_ROW_MAJOR>,                                 \
        ns::Rows<ns::Kind::kQ8_0, format::LAYOUT_ROW_MAJOR>,                                 \
        ns::Rows<ns::Kind::kQ4_0, format::LAYOUT_ROW_GROUPS_16>,                             \
        ns::Rows<ns::Kind::kQ4_K, format::LAYOUT_ROW_GROUPS_16>,                             \
        ns::Rows<ns::Kind::kQ8_0, format::LAYOUT_ROW_GROUPS_16>,                             \
        ns::Rows<ns::Kind::kQ4_1, format::LAYOUT_ROW_MAJOR>,                                 \
        ns::Rows<ns::Kind::kQ5_0, format::LAYOUT_ROW_MAJOR>,                                 \
        ns::Rows<ns::Kind::kQ5_1, format::LAYOUT_ROW_MAJOR>, ns::QuantizeSuperBlocks,        \
        ns::Rows<ns::Kind::kQ5_K, format::LAYOUT_ROW_MAJOR>, ns::RowsQ6_K, nullptr           \
  }
constexpr DotKernels kAvx2 = ZCPACK_YMM_TABLE(avx2, DotIsa::kAvx2);
constexpr DotKernels kAvxVnni = ZCPACK_YMM_TABLE(avx_vnni, DotIsa::kAvxVnni);
constexpr DotKernels kAvx512VnniYmm = ZCPACK_YMM_TABLE(avx512_vnni_ymm, DotIsa::kAvx512VnniYmm);
#undef ZCPACK_YMM_TABLE

}  // namespace

const DotKernels* Avx2DotKernels() { return &kAvx2; }
const DotKernels* AvxVnniDotKernels() { return &kAvxVnni; }
const DotKernels* Avx512VnniYmmDotKernels() { return &kAvx512VnniYmm; }

}  // namespace zcpack::runtime::kernels_internal

#else  // not x86

namespace zcpack::runtime::kernels_internal {
const DotKernels* Avx2DotKernels() { return nullptr; }
const DotKernels* AvxVnniDotKernels() { return nullptr; }
const DotKernels* Avx512VnniYmmDotKernels() { return nullptr; }
}  // namespace zcpack::runtime::kernels_internal

#endif

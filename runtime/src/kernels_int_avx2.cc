// The 256-bit integer kernels (kernels_int_ymm.inc), once per dot-product
// instruction: AVX2 (vpmaddubsw), AVX-VNNI and AVX-512 VL VNNI (vpdpbusd).
#include "kernels_int.h"

#if defined(__x86_64__) || defined(__i386__)

#include <algorithm>
#include <cstring>

#include "kernels_internal.h"
#include "zcpack/format/format_constants.h"

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

constexpr DotKernels kAvx2 = {DotIsa::kAvx2, avx2::kLanes, avx2::Quantize,
                               avx2::Rows<avx2::Kind::kQ4_0>, avx2::Rows<avx2::Kind::kQ4_K>,
                               avx2::Rows<avx2::Kind::kQ8_0>};
constexpr DotKernels kAvxVnni = {DotIsa::kAvxVnni, avx_vnni::kLanes, avx_vnni::Quantize,
                                 avx_vnni::Rows<avx_vnni::Kind::kQ4_0>,
                                 avx_vnni::Rows<avx_vnni::Kind::kQ4_K>,
                                 avx_vnni::Rows<avx_vnni::Kind::kQ8_0>};
constexpr DotKernels kAvx512VnniYmm = {DotIsa::kAvx512VnniYmm, avx512_vnni_ymm::kLanes,
                                       avx512_vnni_ymm::Quantize,
                                       avx512_vnni_ymm::Rows<avx512_vnni_ymm::Kind::kQ4_0>,
                                       avx512_vnni_ymm::Rows<avx512_vnni_ymm::Kind::kQ4_K>,
                                       avx512_vnni_ymm::Rows<avx512_vnni_ymm::Kind::kQ8_0>};

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

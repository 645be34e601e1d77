// The SwiGLU activation of the feed-forward block, per SimdLevel. Internal to
// the runtime.
//
// silu(x) = x / (1 + e(-x)), with e() the polynomial exponential that ggml's
// x86 CPU backend vectorises (it is ARM's optimized-routines expf: x = n ln2
// + b with n = round(x / ln2) from the 1.5 * 2^23 shift, ln2 split in two,
// a degree-5 polynomial in b, then scaled by 2^n; about 1.5 ulp from exp).
// llama.cpp computes the activation with it on every AVX2 and AVX-512 CPU,
// and the 8-bit quantization that follows turns a one-ulp difference here
// into a different token now and then, so zcpack computes the same function
// (ExpApprox() below, operation for operation). Every level gives the same
// bits: the operations are IEEE multiply, add, divide and fused multiply-add,
// and the scaling by 2^n is exact or correctly rounded.
//
// Inputs whose e() argument lies beyond +-192 ln2 give e = inf (positive
// argument) or 0; silu is then 0 (or -0) for large negative x and x for large
// positive x, and NaN stays NaN.
#ifndef ZCPACK_RUNTIME_SRC_ACTIVATION_KERNELS_H_
#define ZCPACK_RUNTIME_SRC_ACTIVATION_KERNELS_H_

#include <cstddef>

#include "zcpack/format/q4_blocks.h"

namespace zcpack::runtime::activation {

// ExpApprox(): e(x) as defined above, the scalar reference.
float ExpApprox(float x);

// SwiGluFn: gate[i] = silu(gate[i]) * up[i] for i < n.
using SwiGluFn = void (*)(float* gate, const float* up, size_t n);

// The function for `level` after format::SupportedSimdLevel().
SwiGluFn SwiGluFor(format::SimdLevel level);
// The scalar reference, for tests.
SwiGluFn ScalarSwiGlu();

}  // namespace zcpack::runtime::activation

#endif  // ZCPACK_RUNTIME_SRC_ACTIVATION_KERNELS_H_

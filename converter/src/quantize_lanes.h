// The lane-wise arithmetic of the block quantizers (q4_0, q4_k, q8_0),
// written once for every instruction set.
//
// Each function below is a template over a vector type V that provides
// kLanes float lanes and the operations listed in quantize_scalar.cc's
// ScalarVec. One lane holds one block: lane b of row e of a "transposed" input
// is element e of block b. Every lane therefore runs exactly the same sequence
// of IEEE operations whatever V is (1 lane for the scalar path, 8 for AVX2,
// 16 for AVX-512), which is what makes the output bytes identical on every
// CPU. The rules that keep it so:
//   - V's operations are exactly rounded (add, sub, mul, div, sqrt, fused
//     multiply-add as one rounding) or exact (min, max, trunc, round, select);
//   - Min(a, b) is `a < b ? a : b` and Max(a, b) is `a > b ? a : b`, the x86
//     semantics, also for NaN and signed zeros;
//   - the translation units that include this file are compiled with
//     -ffp-contract=off, so no compiler fuses a multiply and an add on one
//     path but not on another.
//
// This header is included by quantize_scalar.cc, quantize_avx2.cc and
// quantize_avx512.cc inside an anonymous namespace in quantize_internal,
// after each has selected its instruction set with `#pragma GCC target`, so
// that every instantiation is compiled for the instruction set of its vector
// type and nothing here has external linkage. For the same reason it includes
// nothing itself: the including file first includes <cstddef>, <cstdint>,
// quantize_kernels.h and zcpack/format/format_constants.h.
#ifndef ZCPACK_CONVERTER_SRC_QUANTIZE_LANES_H_
#define ZCPACK_CONVERTER_SRC_QUANTIZE_LANES_H_

// Candidate inverse scales of the q4_0 search, as multiples of the reference
// inverse scale -8 / max (ggml's quantize_row_q4_0_ref). Candidate 0 must be
// the reference itself. The set was chosen greedily on normal, Student-t,
// Laplace and outlier-laden blocks: with the least-squares refits it comes
// within 0.4% of the MSE of a 450-point search over [0.6, 1.5]; a fifth
// candidate (0.975) would gain 0.2% for 20% more time.
inline constexpr float kQ4_0IScaleFactors[] = {1.0f, 1.075f, 0.9f, 1.025f};
inline constexpr int kQ4_0Candidates = sizeof(kQ4_0IScaleFactors) / sizeof(float);
static_assert(kQ4_0IScaleFactors[0] == 1.0f, "candidate 0 must be the reference");

// The search computes codes as min(trunc(x * iscale + 8.5), 15), without the
// lower clamp at 0 that the stored codes get: with iscale at most 1.1875
// times -8 / max, x * iscale + 8.5 > -1, so trunc() already gives 0 (or -0)
// at the bottom. (Only when max is below about 2^-125 can this fail, and then
// every candidate's binary16 scale is 0 and the reference is kept.)
constexpr bool Q4_0FactorsNeedNoLowerClamp() {
  for (float f : kQ4_0IScaleFactors) {
    if (!(f > 0.0f && f <= 1.1875f)) return false;
  }
  return true;
}
static_assert(Q4_0FactorsNeedNoLowerClamp());

// A candidate replaces the reference only when its computed error is below
// kQ4_0Guard times the reference's. The computed errors carry a relative
// rounding error below 1e-5 (32-term sums of positive terms plus small
// corrections), far inside the 2^-12 margin, so the chosen block's true error
// never exceeds the reference's.
inline constexpr float kQ4_0Guard = 1.0f - 1.0f / 4096.0f;

// q4_k sub-block search (ggml's make_qkx2_quants with nmax 15, rmin -1,
// rdelta 0.1, nstep 20): grids of 15 + kQ4_KRMin + kQ4_KRDelta * i steps,
// i in [0, kQ4_KSteps], from the best min so far to the max.
inline constexpr float kQ4_KRMin = -1.0f;
inline constexpr float kQ4_KRDelta = 0.1f;
inline constexpr int kQ4_KSteps = 20;

// Float lanes per block row for the lane kernels below.
inline constexpr int kLaneRows = 32;

// Q4_0SearchLanes(): for kLanes blocks whose elements are given transposed
// (xt[e * kLanes + b] = element e of block b), picks each block's inverse
// scale (used to compute the codes: clamp(trunc(x * iscale + 8.5), 0, 15))
// and its decode scale (a binary16 value held in a float).
//
// Candidates: the reference (codes from -8/max, scale max/-8 rounded to
// binary16: exactly ggml's block) and, for each inverse scale in
// kQ4_0IScaleFactors, the codes it gives with the least-squares scale for
// those codes, rounded to binary16. Errors are computed from residuals
// against an approximate scale s, r = x - q*s (one rounding), and corrected
// exactly in real arithmetic for the final scale d:
//   sum (x - q*d)^2 = sum r^2 + (s-d) * (2 sum r*q + (s-d) sum q^2).
template <class V>
inline void Q4_0SearchLanes(const float* xt, float* out_iscale, float* out_scale) {
  using F = typename V::F;
  using M = typename V::M;
  constexpr int L = V::kLanes;
  const F zero = V::Set(0.0f);

  // The signed value of largest magnitude, first one on ties (as ggml).
  F amax = zero;
  F vmax = zero;
  for (int e = 0; e < kLaneRows; ++e) {
    const F x = V::Load(xt + e * L);
    const F a = V::Abs(x);
    const M bigger = V::Lt(amax, a);
    amax = V::Select(bigger, a, amax);
    vmax = V::Select(bigger, x, vmax);
  }
  const F d_ref = V::Mul(vmax, V::Set(-0.125f));  // == max / -8, exactly
  const M d_is_zero = V::Eq(d_ref, zero);
  const F id_ref = V::Select(d_is_zero, zero, V::Div(V::Set(1.0f), d_ref));
  const F d_ref_h = V::RoundToHalf(d_ref);

  const F half_offset = V::Set(8.5f);
  const F fifteen = V::Set(15.0f);
  const F eight = V::Set(8.0f);
  const F inf = V::Set(__builtin_inff());

  F err_ref = inf;
  F best_err = inf;
  F best_id = id_ref;
  F best_d = d_ref_h;
  for (int k = 0; k < kQ4_0Candidates; ++k) {
    const F id = k == 0 ? id_ref : V::Mul(id_ref, V::Set(kQ4_0IScaleFactors[k]));
    const F s = k == 0 ? d_ref_h : V::Mul(d_ref, V::Set(1.0f / kQ4_0IScaleFactors[k]));
    F sr2 = zero;
    F srq = zero;
    F sqq = zero;
    for (int e = 0; e < kLaneRows; ++e) {
      const F x = V::Load(xt + e * L);
      const F t = V::Min(V::Trunc(V::Add(V::Mul(x, id), half_offset)), fifteen);
      const F q = V::Sub(t, eight);
      const F r = V::Fnma(q, s, x);
      sr2 = V::Fma(r, r, sr2);
      srq = V::Fma(r, q, srq);
      sqq = V::Fma(q, q, sqq);
    }
    const M no_codes = V::Eq(sqq, zero);
    const F corr = V::Select(no_codes, zero, V::Div(srq, sqq));
    const F d_fit = V::RoundToHalf(V::Add(s, corr));
    const F delta = V::Sub(s, d_fit);
    const F err_fit = V::NanToInf(V::Fma(delta, V::Fma(delta, sqq, V::Add(srq, srq)), sr2));
    if (k == 0) {
      err_ref = V::NanToInf(sr2);
      best_err = err_ref;
    }
    const M better = V::Lt(err_fit, best_err);
    best_err = V::Select(better, err_fit, best_err);
    best_id = V::Select(better, id, best_id);
    best_d = V::Select(better, d_fit, best_d);
  }
  const M keep = V::Lt(best_err, V::Mul(err_ref, V::Set(kQ4_0Guard)));
  V::Store(out_iscale, V::Select(keep, best_id, id_ref));
  V::Store(out_scale, V::Select(keep, best_d, d_ref_h));
}

// Q8_0ScaleLanes(): for kLanes blocks given transposed (as above), ggml's
// reference q8_0 scale (quantize_row_q8_0_ref): amax = max |x|, d = amax /
// 127, inverse scale id = d != 0 ? 1 / d : 0 (used to compute the codes:
// round_half_away(x * id)), and the decode scale d rounded to binary16 (held
// in a float). Elements that are NaN are skipped when finding amax, so the
// result does not depend on the order the elements are visited in (ggml's
// amax for a block holding NaN depends on where the NaN sits); for every
// other block amax is ggml's.
template <class V>
inline void Q8_0ScaleLanes(const float* xt, float* out_iscale, float* out_scale) {
  using F = typename V::F;
  const F zero = V::Set(0.0f);
  F amax = zero;
  for (int e = 0; e < kLaneRows; ++e) {
    const F a = V::Abs(V::Load(xt + e * V::kLanes));
    amax = V::Select(V::Lt(amax, a), a, amax);
  }
  const F d = V::Div(amax, V::Set(127.0f));
  V::Store(out_iscale, V::Select(V::Eq(d, zero), zero, V::Div(V::Set(1.0f), d)));
  V::Store(out_scale, V::RoundToHalf(d));
}

// Weighted sums over one grid's codes l, relative to the grid's own
// reconstruction: r = (x - m0) - s0 * l for the grid origin m0 and step s0.
// Fits and errors computed from these sums stay accurate even when the error
// is tiny next to sum w x^2 (a sub-block with one large outlier), where the
// textbook expansion in sums of x cancels catastrophically.
template <class V>
struct Q4_KGridSums {
  typename V::F wl;   // sum w l
  typename V::F wl2;  // sum w l^2
  typename V::F wr;   // sum w r
  typename V::F wrl;  // sum w r l
  typename V::F wr2;  // sum w r^2
};

// Accumulates element x (weight w) of a grid with origin m0, step s0 and
// inverse step iscale into `sums`.
template <class V>
inline void Q4_KAccumulate(typename V::F x, typename V::F w, typename V::F m0, typename V::F s0,
                           typename V::F iscale, Q4_KGridSums<V>& sums) {
  using F = typename V::F;
  const F xm = V::Sub(x, m0);
  const F l = V::Min(V::Max(V::RoundEven(V::Mul(xm, iscale)), V::Set(0.0f)), V::Set(15.0f));
  const F wl = V::Mul(w, l);
  const F r = V::Fnma(l, s0, xm);
  const F wr = V::Mul(w, r);
  sums.wl = V::Add(sums.wl, wl);
  sums.wl2 = V::Fma(wl, l, sums.wl2);
  sums.wr = V::Add(sums.wr, wr);
  sums.wrl = V::Fma(wr, l, sums.wrl);
  sums.wr2 = V::Fma(wr, r, sums.wr2);
}

// Q4_KSubBlockLanes(): for kLanes sub-blocks of 32 elements given transposed
// (as above), fits each sub-block as x ~ scale * l - min_out with l in
// [0, 15], scale >= 0 and min_out >= 0, minimising the error weighted by
// w = rms(sub-block) + |x| (ggml's weighting). ggml's make_qkx2_quants
// search: start from the plain 15-step grid over [min(x, 0), max(x)]; then
// for each of kQ4_KSteps + 1 inverse scales compute the codes on a grid that
// starts at the best min found so far, refit (scale, min) by weighted least
// squares (min clamped to <= 0), and keep the fit if its weighted error is
// lower. wt_scratch holds kLaneRows * kLanes floats.
template <class V>
inline void Q4_KSubBlockLanes(const float* xt, float* wt_scratch, float* out_scale,
                              float* out_min) {
  using F = typename V::F;
  using M = typename V::M;
  constexpr int L = V::kLanes;
  const F zero = V::Set(0.0f);

  F sum_x2 = zero;
  F vmin = V::Load(xt);
  F vmax = vmin;
  for (int e = 0; e < kLaneRows; ++e) {
    const F x = V::Load(xt + e * L);
    sum_x2 = V::Fma(x, x, sum_x2);
    vmin = V::Min(x, vmin);
    vmax = V::Max(x, vmax);
  }
  const F av_x = V::Sqrt(V::Mul(sum_x2, V::Set(1.0f / 32.0f)));
  vmin = V::Min(vmin, zero);
  const M flat = V::Le(V::Sub(vmax, vmin), zero);

  // ggml's starting point, which later fits must beat: the plain 15-step
  // grid from min to max, codes rounded to it.
  const F iscale0 = V::Div(V::Set(15.0f), V::Sub(vmax, vmin));
  const F scale0 = V::Div(V::Set(1.0f), iscale0);
  F sw = zero;
  Q4_KGridSums<V> grid0 = {zero, zero, zero, zero, zero};
  for (int e = 0; e < kLaneRows; ++e) {
    const F x = V::Load(xt + e * L);
    const F w = V::Add(av_x, V::Abs(x));
    V::Store(wt_scratch + e * L, w);
    sw = V::Add(sw, w);
    Q4_KAccumulate<V>(x, w, vmin, scale0, iscale0, grid0);
  }
  F best_scale = scale0;
  F best_min = vmin;
  F best_err = V::NanToInf(grid0.wr2);

  for (int step = 0; step <= kQ4_KSteps; ++step) {
    // As in ggml, the grid of each step starts at the best min so far (the
    // data min at first), which refines the min as the search goes on. The
    // step s0 only needs to be close to 1 / iscale.
    const float steps = 15.0f + kQ4_KRMin + kQ4_KRDelta * static_cast<float>(step);
    const F m0 = best_min;
    const F span = V::Sub(vmax, m0);
    const F iscale = V::Div(V::Set(steps), span);
    const F s0 = V::Mul(span, V::Set(1.0f / steps));
    Q4_KGridSums<V> g = {zero, zero, zero, zero, zero};
    for (int e = 0; e < kLaneRows; ++e) {
      Q4_KAccumulate<V>(V::Load(xt + e * L), V::Load(wt_scratch + e * L), m0, s0, iscale, g);
    }
    // Weighted least squares for (scale, min) = (s0 + da, m0 + db).
    const F det = V::Sub(V::Mul(sw, g.wl2), V::Mul(g.wl, g.wl));
    F da = V::Div(V::Sub(V::Mul(sw, g.wrl), V::Mul(g.wl, g.wr)), det);
    F db = V::Div(V::Sub(V::Mul(g.wl2, g.wr), V::Mul(g.wl, g.wrl)), det);
    // A positive min is not representable: fix min at 0 and refit the scale.
    const M positive_min = V::Gt(V::Add(m0, db), zero);
    db = V::Select(positive_min, V::Sub(zero, m0), db);
    da = V::Select(positive_min, V::Div(V::Fma(m0, g.wl, g.wrl), g.wl2), da);
    // sum w (r - da*l - db)^2, expanded.
    F err = V::Add(g.wr2, V::Mul(V::Mul(da, da), g.wl2));
    err = V::Sub(err, V::Mul(V::Add(da, da), g.wrl));
    err = V::Sub(err, V::Mul(V::Add(db, db), g.wr));
    err = V::Add(err, V::Mul(V::Mul(V::Add(da, da), db), g.wl));
    err = V::Add(err, V::Mul(V::Mul(db, db), sw));
    const M better = V::And(V::Gt(det, zero), V::Lt(err, best_err));
    best_err = V::Select(better, err, best_err);
    best_scale = V::Select(better, V::Add(s0, da), best_scale);
    best_min = V::Select(better, V::Add(m0, db), best_min);
  }
  best_scale = V::Select(flat, zero, best_scale);
  best_min = V::Select(flat, vmin, best_min);
  V::Store(out_scale, V::Max(best_scale, zero));
  V::Store(out_min, V::Max(V::Sub(zero, best_min), zero));
}

// LanePair<V>: two vectors of V used as one of twice the width. The lane
// kernels' steps form long dependency chains; running two independent
// vectors side by side gives the CPU twice the independent work. Lane b < n
// lives in .a, lane n + b in .b, so a transposed row of 2n floats loads as is.
template <class V>
struct LanePair {
  static constexpr int kLanes = 2 * V::kLanes;
  struct F {
    typename V::F a, b;
  };
  struct M {
    typename V::M a, b;
  };
  static F Load(const float* p) { return {V::Load(p), V::Load(p + V::kLanes)}; }
  static void Store(float* p, F v) {
    V::Store(p, v.a);
    V::Store(p + V::kLanes, v.b);
  }
  static F Set(float x) { return {V::Set(x), V::Set(x)}; }
  static F Add(F x, F y) { return {V::Add(x.a, y.a), V::Add(x.b, y.b)}; }
  static F Sub(F x, F y) { return {V::Sub(x.a, y.a), V::Sub(x.b, y.b)}; }
  static F Mul(F x, F y) { return {V::Mul(x.a, y.a), V::Mul(x.b, y.b)}; }
  static F Div(F x, F y) { return {V::Div(x.a, y.a), V::Div(x.b, y.b)}; }
  static F Sqrt(F x) { return {V::Sqrt(x.a), V::Sqrt(x.b)}; }
  static F Fma(F x, F y, F z) { return {V::Fma(x.a, y.a, z.a), V::Fma(x.b, y.b, z.b)}; }
  static F Fnma(F x, F y, F z) { return {V::Fnma(x.a, y.a, z.a), V::Fnma(x.b, y.b, z.b)}; }
  static F Min(F x, F y) { return {V::Min(x.a, y.a), V::Min(x.b, y.b)}; }
  static F Max(F x, F y) { return {V::Max(x.a, y.a), V::Max(x.b, y.b)}; }
  static F Abs(F x) { return {V::Abs(x.a), V::Abs(x.b)}; }
  static F Trunc(F x) { return {V::Trunc(x.a), V::Trunc(x.b)}; }
  static F RoundEven(F x) { return {V::RoundEven(x.a), V::RoundEven(x.b)}; }
  static F RoundToHalf(F x) { return {V::RoundToHalf(x.a), V::RoundToHalf(x.b)}; }
  static F NanToInf(F x) { return {V::NanToInf(x.a), V::NanToInf(x.b)}; }
  static M Lt(F x, F y) { return {V::Lt(x.a, y.a), V::Lt(x.b, y.b)}; }
  static M Le(F x, F y) { return {V::Le(x.a, y.a), V::Le(x.b, y.b)}; }
  static M Gt(F x, F y) { return {V::Gt(x.a, y.a), V::Gt(x.b, y.b)}; }
  static M Eq(F x, F y) { return {V::Eq(x.a, y.a), V::Eq(x.b, y.b)}; }
  static M And(M x, M y) { return {V::And(x.a, y.a), V::And(x.b, y.b)}; }
  static F Select(M m, F x, F y) { return {V::Select(m.a, x.a, y.a), V::Select(m.b, x.b, y.b)}; }
};

// ------------------------------------------------------------- drivers ---
//
// The loops around the lane kernels, shared by every instruction set. Isa is
// a policy class with
//   using Vec = ...;  // the lane vector type
//   // Vec::kLanes blocks of 32 floats at `in` -> xt[e * Vec::kLanes + b].
//   static void TransposeBlocks(const float* in, float* xt);
//   // One q4_0 block (32 floats at x) with the chosen scales -> 18 bytes.
//   static void PackQ4_0(const float* x, float iscale, float scale, uint8_t* block);
//   // One q8_0 block (32 floats at x) with its scales -> 34 bytes.
//   static void PackQ8_0(const float* x, float iscale, float scale, uint8_t* block);
//   // The 128 code bytes of one q4_k super-block (256 floats at x).
//   static void PackQ4_KCodes(const float* x, const float sub_min[8],
//                             const float inv_scale[8], uint8_t* qs);
// The Pack functions must compute each code exactly as the scalar kernel's
// Q4_0Code(), Q4_KCode() and Q8_0Code() do.

// src when it holds `full` floats, else its n floats copied into `padded` and
// zero-filled to `full` (lanes are independent: padding changes no other lane).
inline const float* PadBatch(const float* src, size_t n, size_t full, float* padded) {
  if (n == full) return src;
  for (size_t i = 0; i < n; ++i) padded[i] = src[i];
  for (size_t i = n; i < full; ++i) padded[i] = 0.0f;
  return padded;
}

// The loop shared by the one-scale block types (q4_0, q8_0): kLanes blocks
// of 32 floats at a time are transposed, ScaleLanes picks each block's
// inverse scale and stored scale, and Pack writes each block's kBlockBytes.
template <class Isa, void (*ScaleLanes)(const float* xt, float* iscale, float* scale),
          void (*Pack)(const float* x, float iscale, float scale, uint8_t* block),
          size_t kBlockBytes>
inline void QuantizeScaledBlockBatches(const float* src, size_t n_blocks, uint8_t* dst) {
  constexpr size_t L = Isa::Vec::kLanes;
  alignas(64) float xt[L * kLaneRows];
  alignas(64) float padded[L * kLaneRows];
  alignas(64) float iscale[L];
  alignas(64) float scale[L];
  for (size_t b = 0; b < n_blocks; b += L) {
    const size_t blocks = n_blocks - b < L ? n_blocks - b : L;
    const float* in = src + b * kLaneRows;
    Isa::TransposeBlocks(PadBatch(in, blocks * kLaneRows, L * kLaneRows, padded), xt);
    ScaleLanes(xt, iscale, scale);
    for (size_t i = 0; i < blocks; ++i) {
      Pack(in + i * kLaneRows, iscale[i], scale[i], dst + (b + i) * kBlockBytes);
    }
  }
}

template <class Isa>
inline void QuantizeQ4_0Batches(const float* src, size_t n_blocks, uint8_t* dst) {
  QuantizeScaledBlockBatches<Isa, Q4_0SearchLanes<typename Isa::Vec>, Isa::PackQ4_0,
                             format::kQ4_0BlockBytes>(src, n_blocks, dst);
}

template <class Isa>
inline void QuantizeQ8_0Batches(const float* src, size_t n_blocks, uint8_t* dst) {
  static_assert(format::kQ8_0BlockElements == kLaneRows);
  QuantizeScaledBlockBatches<Isa, Q8_0ScaleLanes<typename Isa::Vec>, Isa::PackQ8_0,
                             format::kQ8_0BlockBytes>(src, n_blocks, dst);
}

template <class Isa>
inline void QuantizeQ4_KBatches(const float* src, size_t n_blocks, uint8_t* dst) {
  constexpr size_t L = Isa::Vec::kLanes;
  // Sub-blocks per batch: whole super-blocks and whole vectors.
  constexpr size_t kSubBlocks = L < 8 ? 8 : L;
  static_assert(kSubBlocks % 8 == 0 && kSubBlocks % L == 0);
  constexpr size_t kSupers = kSubBlocks / 8;
  alignas(64) float xt[L * kLaneRows];
  alignas(64) float wt[L * kLaneRows];
  alignas(64) float padded[kSubBlocks * kLaneRows];
  alignas(64) float scales[kSubBlocks];
  alignas(64) float mins[kSubBlocks];
  for (size_t b = 0; b < n_blocks; b += kSupers) {
    const size_t supers = n_blocks - b < kSupers ? n_blocks - b : kSupers;
    const float* in = src + b * 256;
    const float* batch = PadBatch(in, supers * 256, kSubBlocks * kLaneRows, padded);
    for (size_t g = 0; g < kSubBlocks; g += L) {
      Isa::TransposeBlocks(batch + g * kLaneRows, xt);
      Q4_KSubBlockLanes<typename Isa::Vec>(xt, wt, scales + g, mins + g);
    }
    for (size_t sb = 0; sb < supers; ++sb) {
      uint8_t* out = dst + (b + sb) * format::kQ4_KBlockBytes;
      float sub_min[8];
      float inv_scale[8];
      Q4_KFinishScales(scales + 8 * sb, mins + 8 * sb, out, sub_min, inv_scale);
      Isa::PackQ4_KCodes(in + sb * 256, sub_min, inv_scale, out + 16);
    }
  }
}

#endif  // ZCPACK_CONVERTER_SRC_QUANTIZE_LANES_H_

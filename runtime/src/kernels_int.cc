// The integer dot-product family: CPU detection, the activation buffer, and
// the scalar reference of every kernel (kernels_int.h defines the arithmetic).
#include "kernels_int.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "zcpack/format/coding.h"
#include "zcpack/format/format_constants.h"
#include "zcpack/format/half.h"
#include "zcpack/format/row_groups.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define ZCPACK_INT_X86 1
#endif

namespace zcpack::runtime::kernels_internal {
namespace {

constexpr size_t kQ4_KBytes = format::kQ4_KBlockBytes;
constexpr size_t kQ4_KElements = format::kQ4_KBlockElements;

struct CpuFeatures {
  bool avx512_vnni = false;
  bool avx_vnni = false;
};

CpuFeatures DetectFeatures() {
  CpuFeatures f;
#if defined(ZCPACK_INT_X86)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) != 0) f.avx512_vnni = (ecx & (1u << 11)) != 0;
  if (__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) != 0) f.avx_vnni = (eax & (1u << 4)) != 0;
  // The VNNI kernels also use AVX2 (and AVX-512 F/BW/VL for the EVEX forms):
  // the SimdLevel says whether the CPU and OS run those.
  const format::SimdLevel level = format::DetectSimdLevel();
  f.avx512_vnni = f.avx512_vnni && level >= format::SimdLevel::kAvx512;
  f.avx_vnni = f.avx_vnni && level >= format::SimdLevel::kAvx2;
#endif
  return f;
}

const CpuFeatures& Features() {
  static const CpuFeatures features = DetectFeatures();
  return features;
}

uint16_t LoadU16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// ------------------------------------------------------ scalar reference ---

void QuantizeScalar(const float* x, QuantizedActivations& a, size_t j) {
  int8_t* qs = a.qs(j);
  for (size_t b = 0; b < a.blocks(); ++b) {
    const float* xb = x + b * kActivationBlock;
    int8_t* qb = qs + b * kActivationBlock;
    float amax = 0.0f;
    bool finite = true;
    for (size_t e = 0; e < kActivationBlock; ++e) {
      finite = finite && std::isfinite(xb[e]);
      amax = std::max(amax, std::fabs(xb[e]));
    }
    if (!finite) {
      std::memset(qb, 0, kActivationBlock);
      a.d(j)[b] = std::nanf("");
      a.sum(j)[b] = 0;
      a.negds(j)[b] = std::nanf("");
      continue;
    }
    const float d = amax / 127.0f;
    // 127 / max overflows for maxima below about 3.7e-37, whose scale is 0
    // in binary16 anyway: such a block is stored as zeros.
    const float id = amax >= 127.0f / 3.4028235e38f ? 127.0f / amax : 0.0f;
    int32_t sum = 0;
    for (size_t e = 0; e < kActivationBlock; ++e) {
      qb[e] = static_cast<int8_t>(std::nearbyint(xb[e] * id));
      sum += qb[e];
    }
    // The scale is kept in binary16, as ggml's block_q8_0 keeps it, so
    // products match llama.cpp's; the quants were rounded with the exact one.
    a.d(j)[b] = format::HalfToFloat(format::FloatToHalf(d));
    a.sum(j)[b] = sum;
    a.negds(j)[b] = -(static_cast<float>(sum) * a.d(j)[b]);
  }
  FillQ8Offsets(a, j);
}

// Super-block (q8_K) activations, as kernels_int.h defines them.
void QuantizeSuperBlocksScalar(const float* x, QuantizedActivations& a, size_t j) {
  for (size_t sb = 0; sb < a.cols() / kActivationSuperBlock; ++sb) {
    const float* xb = x + sb * kActivationSuperBlock;
    int8_t* qb = a.qs(j) + sb * kActivationSuperBlock;
    float amax = 0.0f;
    float max = 0.0f;
    bool finite = true;
    for (size_t e = 0; e < kActivationSuperBlock; ++e) {
      finite = finite && std::isfinite(xb[e]);
      if (std::fabs(xb[e]) > amax) {
        amax = std::fabs(xb[e]);
        max = xb[e];
      }
    }
    if (!finite) {
      SetNonFiniteSuperBlock(a, j, sb);
      continue;
    }
    const float iscale = amax != 0.0f ? -127.0f / max : 0.0f;
    if (iscale == 0.0f || std::isinf(iscale)) {
      std::memset(qb, 0, kActivationSuperBlock);
      FinishSuperBlock(a, j, sb, 0.0f);
      continue;
    }
    for (size_t e = 0; e < kActivationSuperBlock; ++e) {
      const int q = static_cast<int>(std::nearbyint(iscale * xb[e]));
      qb[e] = static_cast<int8_t>(std::min(127, q));
    }
    FinishSuperBlock(a, j, sb, 1.0f / iscale);
  }
}

// The 6-bit scale and min of q4_k sub-block s, as format/q4_blocks.h packs them.
void Q4_KScaleMin(const uint8_t* scales, size_t s, int* sc, int* m) {
  if (s < 4) {
    *sc = scales[s] & 63;
    *m = scales[s + 4] & 63;
  } else {
    *sc = (scales[s + 4] & 0xf) | ((scales[s - 4] >> 6) << 4);
    *m = (scales[s + 4] >> 4) | ((scales[s] >> 6) << 4);
  }
}

constexpr size_t Block32Bytes(format::DType dtype) {
  switch (dtype) {
    case format::DTYPE_Q4_0: return format::kQ4_0BlockBytes;
    case format::DTYPE_Q4_1: return format::kQ4_1BlockBytes;
    case format::DTYPE_Q5_0: return format::kQ5_0BlockBytes;
    case format::DTYPE_Q5_1: return format::kQ5_1BlockBytes;
    default: return format::kQ8_0BlockBytes;
  }
}

// One row (`row`, in ggml's byte order) of 32-element blocks of kDType (q4_0,
// q4_1, q5_0 or q5_1); y[j * y_stride + r] for every input j.
template <format::DType kDType>
void Block32RowScalar(const uint8_t* row, const QuantizedActivations& a, float* y,
                      size_t y_stride, uint64_t r) {
  constexpr size_t kBlockBytes = Block32Bytes(kDType);
  constexpr bool kMin = kDType == format::DTYPE_Q4_1 || kDType == format::DTYPE_Q5_1;
  for (size_t j = 0; j < a.n(); ++j) {
    const int8_t* q = a.qs(j);
    float acc = 0.0f;
    for (size_t b = 0; b < a.blocks(); ++b) {
      const uint8_t* block = row + b * kBlockBytes;
      const int8_t* qb = q + b * kActivationBlock;
      int32_t isum = 0;
      if constexpr (kDType == format::DTYPE_Q4_0 || kDType == format::DTYPE_Q4_1) {
        const int offset = kDType == format::DTYPE_Q4_0 ? 8 : 0;
        const uint8_t* qs = block + (kMin ? 4 : 2);
        for (size_t e = 0; e < 16; ++e) {
          isum += ((qs[e] & 0xf) - offset) * qb[e] + ((qs[e] >> 4) - offset) * qb[e + 16];
        }
      } else {  // q5_0, q5_1
        const int offset = kDType == format::DTYPE_Q5_0 ? 16 : 0;
        const uint8_t* qh_bytes = block + (kMin ? 4 : 2);
        const uint32_t qh = format::DecodeFixed32(qh_bytes);
        const uint8_t* qs = qh_bytes + 4;
        for (size_t e = 0; e < 16; ++e) {
          const int u0 = (qs[e] & 0xf) | static_cast<int>(((qh >> e) & 1) << 4);
          const int u1 = (qs[e] >> 4) | static_cast<int>(((qh >> (e + 16)) & 1) << 4);
          isum += (u0 - offset) * qb[e] + (u1 - offset) * qb[e + 16];
        }
      }
      const float scale = format::HalfToFloat(LoadU16(block)) * a.d(j)[b];
      acc = std::fma(static_cast<float>(isum), scale, acc);
      if constexpr (kMin) {
        const float m = format::HalfToFloat(LoadU16(block + 2));
        acc = std::fma(-m, a.negds(j)[b], acc);
      }
    }
    y[j * y_stride + r] = acc;
  }
}

// One q8_0 row: eight partial sums, one per 4-byte word of the blocks
// (kernels_int.h).
void Q8_0RowScalar(const uint8_t* row, const QuantizedActivations& a, float* y, size_t y_stride,
                   uint64_t r) {
  for (size_t j = 0; j < a.n(); ++j) {
    float lanes[kQ8Words] = {};
    for (size_t b = 0; b < a.blocks(); ++b) {
      const uint8_t* block = row + b * format::kQ8_0BlockBytes;
      const int8_t* qb = a.qs(j) + b * kActivationBlock;
      const float scale = format::HalfToFloat(LoadU16(block)) * a.d(j)[b];
      for (size_t g = 0; g < kQ8Words; ++g) {
        int32_t isum = 0;
        for (size_t e = 4 * g; e < 4 * g + 4; ++e) isum += static_cast<int8_t>(block[2 + e]) * qb[e];
        lanes[g] = std::fma(static_cast<float>(isum), scale, lanes[g]);
      }
    }
    y[j * y_stride + r] = SumQ8Words(lanes);
  }
}

template <format::DType kDType>
void Block32RowsScalar(const WeightView& w, const QuantizedActivations& a, float* y,
                       size_t y_stride, uint64_t row_begin, uint64_t row_end) {
  for (uint64_t r = row_begin; r < row_end; ++r) {
    Block32RowScalar<kDType>(w.data + r * w.row_bytes(), a, y, y_stride, r);
  }
}

// q4_k: one integer for the scaled products and one for the mins, folded
// into two float sums every Q4_KFoldSteps() 32-blocks (kernels_int.h).
void Q4_KRowScalar(const uint8_t* row, const QuantizedActivations& a, float* y, size_t y_stride,
                   uint64_t r) {
  const size_t super_blocks = a.cols() / kQ4_KElements;
  for (size_t j = 0; j < a.n(); ++j) {
    const size_t fold = Q4_KFoldSteps(j, a.n());
    float acc = 0.0f;
    float acc_mins = 0.0f;
    for (size_t sb = 0; sb < super_blocks; ++sb) {
      const uint8_t* block = row + sb * kQ4_KBytes;
      const float d = format::HalfToFloat(LoadU16(block));
      const float dmin = format::HalfToFloat(LoadU16(block + 2));
      int32_t products = 0;
      int32_t mins = 0;
      for (size_t s = 0; s < 8; ++s) {
        int sc = 0, m = 0;
        Q4_KScaleMin(block + 4, s, &sc, &m);
        const uint8_t* qs = block + 16 + 32 * (s / 2);
        const int shift = (s % 2) * 4;
        const size_t ab = sb * 8 + s;  // activation block
        const int8_t* qb = a.qs(j) + ab * kActivationBlock;
        int32_t dot = 0;
        for (size_t e = 0; e < 32; ++e) dot += ((qs[e] >> shift) & 0xf) * qb[e];
        products += sc * dot;
        mins += m * a.sum(j)[ab];
        if ((s + 1) % fold == 0) {
          const float da = a.d(j)[ab];
          acc = std::fma(static_cast<float>(products), d * da, acc);
          acc_mins = std::fma(static_cast<float>(mins), dmin * da, acc_mins);
          products = 0;
          mins = 0;
        }
      }
    }
    y[j * y_stride + r] = acc - acc_mins;
  }
}

void Q4_KRowsScalar(const WeightView& w, const QuantizedActivations& a, float* y, size_t y_stride,
                    uint64_t row_begin, uint64_t row_end) {
  for (uint64_t r = row_begin; r < row_end; ++r) {
    Q4_KRowScalar(w.data + r * w.row_bytes(), a, y, y_stride, r);
  }
}

// q5_k: eight word sums per super-block, each folded into its own float sum,
// and the mins into one more (kernels_int.h).
void Q5_KRowScalar(const uint8_t* row, const QuantizedActivations& a, float* y, size_t y_stride,
                   uint64_t r) {
  const size_t super_blocks = a.cols() / kQ4_KElements;
  for (size_t j = 0; j < a.n(); ++j) {
    float lanes[kQ8Words] = {};
    float acc_mins = 0.0f;
    for (size_t sb = 0; sb < super_blocks; ++sb) {
      const uint8_t* block = row + sb * format::kQ5_KBlockBytes;
      const float d = format::HalfToFloat(LoadU16(block));
      const float dmin = format::HalfToFloat(LoadU16(block + 2));
      const uint8_t* qh = block + 16;
      int32_t words[kQ8Words] = {};
      int32_t mins = 0;
      for (size_t s = 0; s < 8; ++s) {
        int sc = 0, m = 0;
        Q4_KScaleMin(block + 4, s, &sc, &m);
        const uint8_t* qs = block + 48 + 32 * (s / 2);
        const int shift = (s % 2) * 4;
        const size_t ab = sb * 8 + s;
        const int8_t* qb = a.qs(j) + ab * kActivationBlock;
        for (size_t g = 0; g < kQ8Words; ++g) {
          int32_t dot = 0;
          for (size_t e = 4 * g; e < 4 * g + 4; ++e) {
            const int u = ((qs[e] >> shift) & 0xf) | (((qh[e] >> s) & 1) << 4);
            dot += u * qb[e];
          }
          words[g] += sc * dot;
        }
        mins += m * a.sum(j)[ab];
      }
      const float da = a.d(j)[sb * 8];
      for (size_t g = 0; g < kQ8Words; ++g) {
        lanes[g] = std::fma(da * d, static_cast<float>(words[g]), lanes[g]);
      }
      acc_mins = std::fma(-da * dmin, static_cast<float>(mins), acc_mins);
    }
    y[j * y_stride + r] = SumQ8Words(lanes) + acc_mins;
  }
}

// q6_k: eight word sums per super-block, each folded into its own float sum
// (kernels_int.h).
void Q6_KRowScalar(const uint8_t* row, const QuantizedActivations& a, float* y, size_t y_stride,
                   uint64_t r) {
  const size_t super_blocks = a.cols() / kQ4_KElements;
  for (size_t j = 0; j < a.n(); ++j) {
    float lanes[kQ8Words] = {};
    for (size_t sb = 0; sb < super_blocks; ++sb) {
      const uint8_t* block = row + sb * format::kQ6_KBlockBytes;
      const float d = format::HalfToFloat(LoadU16(block + 208));
      const int8_t* scales = reinterpret_cast<const int8_t*>(block + 192);
      const int32_t* sum16 = a.sum16(j) + sb * 16;
      int32_t words[kQ8Words] = {};
      for (size_t s = 0; s < 8; ++s) {
        const size_t h = s / 4, g = s % 4;
        const uint8_t* ql = block + 64 * h + 32 * (g % 2);
        const uint8_t* qh = block + 128 + 32 * h;
        const int8_t* qb = a.qs(j) + (sb * 8 + s) * kActivationBlock;
        for (size_t k = 0; k < kQ8Words; ++k) {
          int32_t dot = 0;
          for (size_t e = 4 * k; e < 4 * k + 4; ++e) {
            const int u = ((ql[e] >> (4 * (g / 2))) & 0xf) | (((qh[e] >> (2 * g)) & 3) << 4);
            dot += u * qb[e];
          }
          words[k] += scales[2 * s + k / 4] * dot;
        }
        // The codes' offset of 32, taken out of word s's sum for 32-block s.
        words[s] -= 32 * (scales[2 * s] * sum16[2 * s] + scales[2 * s + 1] * sum16[2 * s + 1]);
      }
      const float da = a.d(j)[sb * 8];
      for (size_t k = 0; k < kQ8Words; ++k) {
        lanes[k] = std::fma(da * d, static_cast<float>(words[k]), lanes[k]);
      }
    }
    y[j * y_stride + r] = SumQ8Words(lanes);
  }
}

template <void (*kRow)(const uint8_t*, const QuantizedActivations&, float*, size_t, uint64_t)>
void RowMajorRowsScalar(const WeightView& w, const QuantizedActivations& a, float* y,
                        size_t y_stride, uint64_t row_begin, uint64_t row_end) {
  for (uint64_t r = row_begin; r < row_end; ++r) kRow(w.data + r * w.row_bytes(), a, y, y_stride, r);
}

// Row-grouped matrices: each row is gathered back into ggml's order (the
// layout is a permutation of the same bytes), then computed as above.
template <void (*kRow)(const uint8_t*, const QuantizedActivations&, float*, size_t, uint64_t)>
void GroupedRowsScalar(const WeightView& w, const QuantizedActivations& a, float* y,
                       size_t y_stride, uint64_t row_begin, uint64_t row_end) {
  std::vector<uint8_t> row(w.row_bytes());
  for (uint64_t r = row_begin; r < row_end; ++r) {
    format::CopyRowMajorRow(w.dtype, w.layout, w.rows, w.row_bytes(), w.data, r, row.data());
    kRow(row.data(), a, y, y_stride, r);
  }
}

}  // namespace

const char* DotIsaName(DotIsa isa) {
  switch (isa) {
    case DotIsa::kScalar: return "scalar";
    case DotIsa::kAvx2: return "avx2";
    case DotIsa::kAvxVnni: return "avx_vnni";
    case DotIsa::kAvx512VnniYmm: return "avx512_vnni_ymm";
    case DotIsa::kAvx512Vnni: return "avx512_vnni";
  }
  return "unknown";
}

bool DotIsaSupported(DotIsa isa) {
  switch (isa) {
    case DotIsa::kScalar: return true;
    case DotIsa::kAvx2: return format::DetectSimdLevel() >= format::SimdLevel::kAvx2;
    case DotIsa::kAvxVnni: return Features().avx_vnni;
    case DotIsa::kAvx512VnniYmm:
    case DotIsa::kAvx512Vnni: return Features().avx512_vnni;
  }
  return false;
}

DotIsa DotIsaFor(format::SimdLevel level) {
  level = format::SupportedSimdLevel(level);
  if (level == format::SimdLevel::kScalar) return DotIsa::kScalar;
  if (level == format::SimdLevel::kAvx512 && Features().avx512_vnni) return DotIsa::kAvx512Vnni;
  return Features().avx_vnni ? DotIsa::kAvxVnni : DotIsa::kAvx2;
}

const DotKernels* DotKernelsFor(DotIsa isa) {
  if (!DotIsaSupported(isa)) return nullptr;
  switch (isa) {
    case DotIsa::kScalar: return &ScalarDotKernels();
    case DotIsa::kAvx2: return Avx2DotKernels();
    case DotIsa::kAvxVnni: return AvxVnniDotKernels();
    case DotIsa::kAvx512VnniYmm: return Avx512VnniYmmDotKernels();
    case DotIsa::kAvx512Vnni: return Avx512VnniDotKernels();
  }
  return nullptr;
}

const DotKernels& ScalarDotKernels() {
  static constexpr DotKernels kKernels = {
      DotIsa::kScalar,
      1,
      QuantizeScalar,
      Block32RowsScalar<format::DTYPE_Q4_0>,
      Q4_KRowsScalar,
      RowMajorRowsScalar<Q8_0RowScalar>,
      GroupedRowsScalar<Block32RowScalar<format::DTYPE_Q4_0>>,
      GroupedRowsScalar<Q4_KRowScalar>,
      GroupedRowsScalar<Q8_0RowScalar>,
      Block32RowsScalar<format::DTYPE_Q4_1>,
      Block32RowsScalar<format::DTYPE_Q5_0>,
      Block32RowsScalar<format::DTYPE_Q5_1>,
      QuantizeSuperBlocksScalar,
      RowMajorRowsScalar<Q5_KRowScalar>,
      RowMajorRowsScalar<Q6_KRowScalar>,
      nullptr,
  };
  return kKernels;
}

void FinishSuperBlock(QuantizedActivations& a, size_t j, size_t sb, float d_super) {
  const int8_t* qb = a.qs(j) + sb * kActivationSuperBlock;
  int32_t* sum16 = a.sum16(j) + sb * (kActivationSuperBlock / 16);
  for (size_t t = 0; t < kActivationSuperBlock / 16; ++t) {
    int32_t sum = 0;
    for (size_t e = 0; e < 16; ++e) sum += qb[16 * t + e];
    sum16[t] = sum;
  }
  for (size_t s = 0; s < kActivationSuperBlock / kActivationBlock; ++s) {
    const size_t b = sb * (kActivationSuperBlock / kActivationBlock) + s;
    const int32_t sum = sum16[2 * s] + sum16[2 * s + 1];
    a.d(j)[b] = d_super;
    a.sum(j)[b] = sum;
    a.negds(j)[b] = -(static_cast<float>(sum) * d_super);
  }
}

void FillQ8Offsets(QuantizedActivations& a, size_t j) {
  const int8_t* q = a.qs(j);
  int32_t* offsets = a.q8_offsets(j);
  for (size_t w = 0; w < a.blocks() * kQ8Words; ++w) {
    offsets[w] = -128 * (q[4 * w] + q[4 * w + 1] + q[4 * w + 2] + q[4 * w + 3]);
  }
}

void SetNonFiniteSuperBlock(QuantizedActivations& a, size_t j, size_t sb) {
  std::memset(a.qs(j) + sb * kActivationSuperBlock, 0, kActivationSuperBlock);
  FinishSuperBlock(a, j, sb, std::nanf(""));  // negds = -(0 * NaN) = NaN
}

void QuantizedActivations::Resize(size_t n, size_t cols) {
  n_ = n;
  cols_ = cols;
  blocks_ = cols / kActivationBlock;
  if (qs_storage_.size() < ValueBytes(n, cols)) qs_storage_.resize(ValueBytes(n, cols));
  const uintptr_t base = reinterpret_cast<uintptr_t>(qs_storage_.data());
  qs_ = qs_storage_.data() + ((64 - base % 64) % 64);
  const size_t per_block = PerBlock(n, cols);
  if (d_.size() < per_block) {
    d_.resize(per_block);
    sum_.resize(per_block);
    negds_.resize(per_block);
    sum16_.resize(2 * per_block);
    q8_offsets_.resize(kQ8Words * per_block);
  }
}

uint64_t QuantizedActivations::StorageBytes(size_t n, size_t cols) {
  const uint64_t per_block = PerBlock(n, cols);
  return ValueBytes(n, cols) + per_block * (sizeof(float) + sizeof(int32_t) + sizeof(float)) +
         (2 + kQ8Words) * per_block * sizeof(int32_t);
}

uint8_t* ThreadScratch(size_t bytes) {
  thread_local std::vector<uint8_t> storage;
  if (storage.size() < bytes + 64) storage.resize(bytes + 64);
  const uintptr_t base = reinterpret_cast<uintptr_t>(storage.data());
  return storage.data() + ((64 - base % 64) % 64);
}

}  // namespace zcpack::runtime::kernels_internal

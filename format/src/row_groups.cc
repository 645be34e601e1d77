#include "zcpack/format/row_groups.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "zcpack/format/dtype.h"
#include "zcpack/format/format_constants.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define ZCPACK_ROW_GROUPS_X86 1
#endif

namespace zcpack::format {
namespace {

// Where byte `i` of block `b` of row `r` (r < 16) of a group lives, relative
// to the group's start.
struct GroupGeometry {
  uint64_t block_bytes;
  uint64_t prefix;

  uint64_t Offset(uint64_t b, uint64_t r, uint64_t i) const {
    const uint64_t tile = b * kRowGroupRows * block_bytes;
    if (i < prefix) return tile + r * prefix + i;
    const uint64_t word = (i - prefix) / kRowGroupWordBytes;
    return tile + kRowGroupRows * prefix + (word * kRowGroupRows + r) * kRowGroupWordBytes +
           (i - prefix) % kRowGroupWordBytes;
  }
};

// One group (16 rows of `blocks` blocks) of a block type whose geometry is
// known at compile time, so that each prefix and word is one load and one
// store. Tile by tile, in the order of the grouped bytes: the grouped side is
// read or written front to back, the row-major side in 16 streams, one per
// row, which the hardware prefetchers do not follow well: each row's bytes
// kPrefetchBlocks blocks ahead are asked for explicitly (about twice the
// speed on a source just read from disk, which no cache holds).
template <bool kToGroups, uint64_t kBlockBytes, uint64_t kPrefix>
void RearrangeGroup(uint64_t blocks, uint64_t row_bytes, const uint8_t* src, uint8_t* dst) {
  constexpr uint64_t kWords = (kBlockBytes - kPrefix) / kRowGroupWordBytes;
  constexpr uint64_t kPrefetchBlocks = 8;
  const uint8_t* row_major_side = kToGroups ? src : dst;
  for (uint64_t b = 0; b < blocks; ++b) {
    const uint64_t tile = b * kRowGroupRows * kBlockBytes;
    const uint64_t block = b * kBlockBytes;
    if (b + kPrefetchBlocks < blocks) {
      for (uint64_t r = 0; r < kRowGroupRows; ++r) {
        __builtin_prefetch(row_major_side + r * row_bytes + block + kPrefetchBlocks * kBlockBytes,
                           kToGroups ? 0 : 1);
      }
    }
    uint64_t grouped = tile;
    for (uint64_t r = 0; r < kRowGroupRows; ++r, grouped += kPrefix) {
      const uint64_t row_major = r * row_bytes + block;
      if constexpr (kToGroups) {
        std::memcpy(dst + grouped, src + row_major, kPrefix);
      } else {
        std::memcpy(dst + row_major, src + grouped, kPrefix);
      }
    }
    for (uint64_t w = 0; w < kWords; ++w) {
      const uint64_t in_block = kPrefix + w * kRowGroupWordBytes;
      for (uint64_t r = 0; r < kRowGroupRows; ++r, grouped += kRowGroupWordBytes) {
        const uint64_t row_major = r * row_bytes + block + in_block;
        if constexpr (kToGroups) {
          std::memcpy(dst + grouped, src + row_major, kRowGroupWordBytes);
        } else {
          std::memcpy(dst + row_major, src + grouped, kRowGroupWordBytes);
        }
      }
    }
  }
}

// Any other geometry, byte by byte through GroupGeometry::Offset().
template <bool kToGroups>
void RearrangeGroupGeneric(const GroupGeometry& geo, uint64_t blocks, uint64_t row_bytes,
                           const uint8_t* s, uint8_t* d) {
  for (uint64_t r = 0; r < kRowGroupRows; ++r) {
    for (uint64_t b = 0; b < blocks; ++b) {
      const uint64_t row_major = r * row_bytes + b * geo.block_bytes;
      // The prefix, then whole words.
      for (uint64_t i = 0; i < geo.prefix; ++i) {
        const uint64_t grouped = geo.Offset(b, r, i);
        if constexpr (kToGroups) {
          d[grouped] = s[row_major + i];
        } else {
          d[row_major + i] = s[grouped];
        }
      }
      for (uint64_t i = geo.prefix; i < geo.block_bytes; i += kRowGroupWordBytes) {
        const uint64_t grouped = geo.Offset(b, r, i);
        if constexpr (kToGroups) {
          std::memcpy(d + grouped, s + row_major + i, kRowGroupWordBytes);
        } else {
          std::memcpy(d + row_major + i, s + grouped, kRowGroupWordBytes);
        }
      }
    }
  }
}

#if defined(ZCPACK_ROW_GROUPS_X86)
#define ZCPACK_ROW_GROUPS_AVX2 __attribute__((target("avx2")))

// The 4x4 transpose of dwords inside each 128-bit lane of v[0..3]: with
// v[k] = [x_k | y_k] (four dwords each), afterwards v[k] = [dword k of
// x_0..x_3 | dword k of y_0..y_3]. Its own inverse.
ZCPACK_ROW_GROUPS_AVX2 inline void TransposeLanes4x4(__m256i v[4]) {
  const __m256i ab_lo = _mm256_unpacklo_epi32(v[0], v[1]);
  const __m256i ab_hi = _mm256_unpackhi_epi32(v[0], v[1]);
  const __m256i cd_lo = _mm256_unpacklo_epi32(v[2], v[3]);
  const __m256i cd_hi = _mm256_unpackhi_epi32(v[2], v[3]);
  v[0] = _mm256_unpacklo_epi64(ab_lo, cd_lo);
  v[1] = _mm256_unpackhi_epi64(ab_lo, cd_lo);
  v[2] = _mm256_unpacklo_epi64(ab_hi, cd_hi);
  v[3] = _mm256_unpackhi_epi64(ab_hi, cd_hi);
}

// RearrangeGroup() with the words moved 16 bytes of a row at a time: for
// rows 8h .. 8h + 7, rows 8h + k and 8h + k + 4 share a vector, and one
// transpose gives four words of the eight rows, each 32 contiguous grouped
// bytes (and back). The prefixes, two bytes per row, move as before.
template <bool kToGroups, uint64_t kBlockBytes, uint64_t kPrefix>
ZCPACK_ROW_GROUPS_AVX2 void RearrangeGroupAvx2(uint64_t blocks, uint64_t row_bytes,
                                               const uint8_t* src, uint8_t* dst,
                                               const uint8_t* next_src, uint64_t next_bytes) {
  constexpr uint64_t kWords = (kBlockBytes - kPrefix) / kRowGroupWordBytes;
  static_assert(kWords % 4 == 0, "words move four at a time");
  // The next group's source, front to back, a block's share per block: one
  // stream that memory serves at full speed, where the 16 row streams of
  // this group, each asked for only a little ahead, stalled on every line.
  const uint64_t share = (next_bytes + blocks - 1) / blocks;
  for (uint64_t b = 0; b < blocks; ++b) {
    const uint64_t tile = b * kRowGroupRows * kBlockBytes;
    const uint64_t block = b * kBlockBytes;
    for (uint64_t at = b * share; at < std::min(next_bytes, (b + 1) * share); at += 64) {
      __builtin_prefetch(next_src + at, 0);
    }
    for (uint64_t r = 0; r < kRowGroupRows; ++r) {
      const uint64_t row_major = r * row_bytes + block;
      if constexpr (kToGroups) {
        std::memcpy(dst + tile + r * kPrefix, src + row_major, kPrefix);
      } else {
        std::memcpy(dst + row_major, src + tile + r * kPrefix, kPrefix);
      }
    }
    for (uint64_t c = 0; c < kWords / 4; ++c) {
      const uint64_t in_block = block + kPrefix + 16 * c;
      for (uint64_t h = 0; h < 2; ++h) {
        // Grouped bytes of word 4c + k, rows 8h .. 8h + 7.
        auto grouped = [&](uint64_t k) {
          return tile + kRowGroupRows * kPrefix +
                 ((4 * c + k) * kRowGroupRows + 8 * h) * kRowGroupWordBytes;
        };
        __m256i v[4];
        if constexpr (kToGroups) {
          for (uint64_t k = 0; k < 4; ++k) {
            const uint8_t* row = src + (8 * h + k) * row_bytes + in_block;
            v[k] = _mm256_inserti128_si256(
                _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row))),
                _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 4 * row_bytes)), 1);
          }
          TransposeLanes4x4(v);
          for (uint64_t k = 0; k < 4; ++k) {
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + grouped(k)), v[k]);
          }
        } else {
          for (uint64_t k = 0; k < 4; ++k) {
            v[k] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + grouped(k)));
          }
          TransposeLanes4x4(v);
          for (uint64_t k = 0; k < 4; ++k) {
            uint8_t* row = dst + (8 * h + k) * row_bytes + in_block;
            _mm_storeu_si128(reinterpret_cast<__m128i*>(row), _mm256_castsi256_si128(v[k]));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(row + 4 * row_bytes),
                             _mm256_extracti128_si256(v[k], 1));
          }
        }
      }
    }
  }
}
#endif

template <bool kToGroups, uint64_t kBlockBytes, uint64_t kPrefix>
void RearrangeGroupAt(SimdLevel level, uint64_t blocks, uint64_t row_bytes, const uint8_t* src,
                      uint8_t* dst, const uint8_t* next_src, uint64_t next_bytes) {
#if defined(ZCPACK_ROW_GROUPS_X86)
  if (level >= SimdLevel::kAvx2) {
    RearrangeGroupAvx2<kToGroups, kBlockBytes, kPrefix>(blocks, row_bytes, src, dst, next_src,
                                                        next_bytes);
    return;
  }
#else
  (void)next_src;
  (void)next_bytes;
#endif
  (void)level;
  RearrangeGroup<kToGroups, kBlockBytes, kPrefix>(blocks, row_bytes, src, dst);
}

template <bool kToGroups>
void Rearrange(DType dtype, uint64_t rows, uint64_t row_bytes, const uint8_t* src, uint8_t* dst,
               SimdLevel level) {
  level = SupportedSimdLevel(level);
  const GroupGeometry geo{BlockBytes(dtype), RowGroupPrefixBytes(dtype)};
  const uint64_t blocks = row_bytes / geo.block_bytes;
  const uint64_t groups = rows / kRowGroupRows;
  const uint64_t group_bytes = kRowGroupRows * row_bytes;
  for (uint64_t g = 0; g < groups; ++g) {
    const uint8_t* s = src + g * group_bytes;
    uint8_t* d = dst + g * group_bytes;
    // The source after this group (the next group, or the tail rows).
    const uint8_t* next = s + group_bytes;
    const uint64_t next_bytes = std::min(group_bytes, rows * row_bytes - (g + 1) * group_bytes);
    switch (dtype) {
      case DTYPE_Q4_0:
        RearrangeGroupAt<kToGroups, kQ4_0BlockBytes, kQ4_0RowGroupPrefixBytes>(
            level, blocks, row_bytes, s, d, next, next_bytes);
        break;
      case DTYPE_Q8_0:
        RearrangeGroupAt<kToGroups, kQ8_0BlockBytes, kQ8_0RowGroupPrefixBytes>(
            level, blocks, row_bytes, s, d, next, next_bytes);
        break;
      case DTYPE_Q4_K:
        RearrangeGroupAt<kToGroups, kQ4_KBlockBytes, kQ4_KRowGroupPrefixBytes>(
            level, blocks, row_bytes, s, d, next, next_bytes);
        break;
      default:
        RearrangeGroupGeneric<kToGroups>(geo, blocks, row_bytes, s, d);
        break;
    }
  }
  const uint64_t tail = groups * group_bytes;
  std::memcpy(dst + tail, src + tail, (rows - groups * kRowGroupRows) * row_bytes);
}

}  // namespace

bool SupportsRowGroups(DType dtype) {
  return dtype == DTYPE_Q4_0 || dtype == DTYPE_Q8_0 || dtype == DTYPE_Q4_K;
}

std::string TensorLayoutProblem(const TensorEntry& tensor, uint64_t required_features) {
  switch (tensor.layout()) {
    case LAYOUT_ROW_MAJOR:
      return "";
    case LAYOUT_ROW_GROUPS_16:
      break;
    default:
      return absl::StrCat("unknown layout ", static_cast<int>(tensor.layout()));
  }
  if (!SupportsRowGroups(tensor.dtype())) {
    return absl::StrCat("layout ", LayoutName(tensor.layout()),
                        " needs a q4_0, q8_0 or q4_k tensor, not ", DTypeName(tensor.dtype()));
  }
  if (tensor.shape_size() != 2) {
    return absl::StrCat("layout ", LayoutName(tensor.layout()),
                        " needs a matrix (rank 2), not shape [",
                        absl::StrJoin(tensor.shape(), ", "), "]");
  }
  if ((required_features & kFeatureRowGroups) == 0) {
    return absl::StrCat("layout ", LayoutName(tensor.layout()),
                        " but the header does not set the row_groups required feature (bit 1)");
  }
  return "";
}

absl::string_view LayoutName(TensorLayout layout) {
  switch (layout) {
    case LAYOUT_ROW_MAJOR: return "row-major";
    case LAYOUT_ROW_GROUPS_16: return "row-groups";
    default: return "unknown";
  }
}

absl::StatusOr<TensorLayout> ParseLayout(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower == "row-major" || lower == "row_major") return LAYOUT_ROW_MAJOR;
  if (lower == "row-groups" || lower == "row_groups" || lower == "row-groups-16") {
    return LAYOUT_ROW_GROUPS_16;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown layout '", name, "' (expected row-groups or row-major)"));
}

uint64_t RowGroupPrefixBytes(DType dtype) {
  switch (dtype) {
    case DTYPE_Q4_0: return kQ4_0RowGroupPrefixBytes;
    case DTYPE_Q8_0: return kQ8_0RowGroupPrefixBytes;
    case DTYPE_Q4_K: return kQ4_KRowGroupPrefixBytes;
    default: return 0;
  }
}

void ToRowGroups(DType dtype, uint64_t rows, uint64_t row_bytes, const uint8_t* src, uint8_t* dst) {
  Rearrange<true>(dtype, rows, row_bytes, src, dst, DetectSimdLevel());
}

void ToRowGroups(DType dtype, uint64_t rows, uint64_t row_bytes, const uint8_t* src, uint8_t* dst,
                 SimdLevel level) {
  Rearrange<true>(dtype, rows, row_bytes, src, dst, level);
}

void FromRowGroups(DType dtype, uint64_t rows, uint64_t row_bytes, const uint8_t* src,
                   uint8_t* dst) {
  Rearrange<false>(dtype, rows, row_bytes, src, dst, DetectSimdLevel());
}

void FromRowGroups(DType dtype, uint64_t rows, uint64_t row_bytes, const uint8_t* src,
                   uint8_t* dst, SimdLevel level) {
  Rearrange<false>(dtype, rows, row_bytes, src, dst, level);
}

void CopyRowMajorRow(DType dtype, TensorLayout layout, uint64_t rows, uint64_t row_bytes,
                     const uint8_t* data, uint64_t row, uint8_t* out) {
  const uint64_t groups = rows / kRowGroupRows;
  if (layout != LAYOUT_ROW_GROUPS_16 || row >= groups * kRowGroupRows) {
    std::memcpy(out, data + row * row_bytes, row_bytes);
    return;
  }
  const GroupGeometry geo{BlockBytes(dtype), RowGroupPrefixBytes(dtype)};
  const uint8_t* group = data + (row / kRowGroupRows) * kRowGroupRows * row_bytes;
  const uint64_t r = row % kRowGroupRows;
  for (uint64_t b = 0; b < row_bytes / geo.block_bytes; ++b) {
    uint8_t* block = out + b * geo.block_bytes;
    for (uint64_t i = 0; i < geo.prefix; ++i) block[i] = group[geo.Offset(b, r, i)];
    for (uint64_t i = geo.prefix; i < geo.block_bytes; i += kRowGroupWordBytes) {
      std::memcpy(block + i, group + geo.Offset(b, r, i), kRowGroupWordBytes);
    }
  }
}

}  // namespace zcpack::format

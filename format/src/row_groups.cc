#include "zcpack/format/row_groups.h"

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "zcpack/format/dtype.h"
#include "zcpack/format/format_constants.h"

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

template <bool kToGroups>
void Rearrange(DType dtype, uint64_t rows, uint64_t row_bytes, const uint8_t* src, uint8_t* dst) {
  const GroupGeometry geo{BlockBytes(dtype), RowGroupPrefixBytes(dtype)};
  const uint64_t blocks = row_bytes / geo.block_bytes;
  const uint64_t groups = rows / kRowGroupRows;
  const uint64_t group_bytes = kRowGroupRows * row_bytes;
  for (uint64_t g = 0; g < groups; ++g) {
    const uint8_t* s = src + g * group_bytes;
    uint8_t* d = dst + g * group_bytes;
    switch (dtype) {
      case DTYPE_Q4_0:
        RearrangeGroup<kToGroups, kQ4_0BlockBytes, kQ4_0RowGroupPrefixBytes>(blocks, row_bytes, s, d);
        break;
      case DTYPE_Q8_0:
        RearrangeGroup<kToGroups, kQ8_0BlockBytes, kQ8_0RowGroupPrefixBytes>(blocks, row_bytes, s, d);
        break;
      case DTYPE_Q4_K:
        RearrangeGroup<kToGroups, kQ4_KBlockBytes, kQ4_KRowGroupPrefixBytes>(blocks, row_bytes, s, d);
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
  Rearrange<true>(dtype, rows, row_bytes, src, dst);
}

void FromRowGroups(DType dtype, uint64_t rows, uint64_t row_bytes, const uint8_t* src,
                   uint8_t* dst) {
  Rearrange<false>(dtype, rows, row_bytes, src, dst);
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

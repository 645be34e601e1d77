// LAYOUT_ROW_GROUPS_16: the block order the runtime's kernels read in one
// sequential stream (format/SPEC.md, "Row groups").
//
// A [rows, cols] matrix of a block type with B-byte blocks and nb blocks per
// row holds G = rows / 16 groups, then the last rows % 16 rows in ggml's
// row-major order. Group g (rows 16g .. 16g + 15) stores its blocks in
// order; block b of the group is 16 * B bytes:
//
//   +--------------------------+-------------+-------------+-----+
//   | prefix: P bytes per row, | word 0 of   | word 1 of   | ... |
//   | rows 16g .. 16g + 15     | rows 0..15  | rows 0..15  |     |
//   +--------------------------+-------------+-------------+-----+
//     16 * P bytes               64 bytes      64 bytes      (B - P) / 4 words
//
// where the prefix is the block's first P bytes (the fp16 scale of q4_0 and
// q8_0: P = 2; q4_k: P = 0) and word w is the block's bytes
// [P + 4w, P + 4w + 4). Every byte of the row-major matrix appears exactly
// once: the layouts have the same size and checksum-independent contents,
// and each converts to the other without loss.
//
// Trust: callers pass buffers of the documented sizes; nothing is checked
// here (the reader validates shapes and sizes first).
// Thread-safety: all functions are reentrant.
#ifndef ZCPACK_FORMAT_ROW_GROUPS_H_
#define ZCPACK_FORMAT_ROW_GROUPS_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "zcpack/format/manifest.pb.h"
#include "zcpack/format/q4_blocks.h"

namespace zcpack::format {

// Whether `dtype` can be stored in LAYOUT_ROW_GROUPS_16 (q4_0, q8_0, q4_k).
bool SupportsRowGroups(DType dtype);

// TensorLayoutProblem(): "" when `tensor`'s layout is valid in a container
// whose header sets `required_features`; otherwise what is wrong, for a
// message that the caller prefixes with the file and the tensor. The one
// rule set for layouts, used by the reader (which refuses the file), the
// writer (which refuses the plan) and the validator (check "layout"):
//   - the layout is LAYOUT_ROW_MAJOR or LAYOUT_ROW_GROUPS_16;
//   - LAYOUT_ROW_GROUPS_16 only on a matrix (rank 2) of a dtype for which
//     SupportsRowGroups() holds, and only when the header sets
//     kFeatureRowGroups (so that a reader without the layout refuses the
//     file instead of reading its blocks in the wrong order).
// Expects a known dtype and a valid shape (checked before it).
std::string TensorLayoutProblem(const TensorEntry& tensor, uint64_t required_features);

// LayoutName(): "row-major", "row-groups", or "unknown" for another value;
// the spelling of `zcpack convert --layout` and `zcpack inspect`.
absl::string_view LayoutName(TensorLayout layout);

// ParseLayout(): the inverse of LayoutName(), also accepting "row_major",
// "row_groups" and "row-groups-16". InvalidArgument naming the accepted
// values otherwise.
absl::StatusOr<TensorLayout> ParseLayout(absl::string_view name);

// RowGroupPrefixBytes(): P for `dtype` (0 for types without row groups).
uint64_t RowGroupPrefixBytes(DType dtype);

// ToRowGroups(): `rows` rows of `row_bytes` bytes each (whole blocks of
// `dtype`), row-major at `src`, into the row-group layout at `dst` (the same
// size; src and dst must not overlap). `rows` need not be a multiple of 16:
// the last rows % 16 rows are copied as they are. The overloads with a
// SimdLevel use at most that level (SupportedSimdLevel() applies); the
// others, the best this CPU has. Every level writes the same bytes.
void ToRowGroups(DType dtype, uint64_t rows, uint64_t row_bytes, const uint8_t* src, uint8_t* dst);
void ToRowGroups(DType dtype, uint64_t rows, uint64_t row_bytes, const uint8_t* src, uint8_t* dst,
                 SimdLevel level);

// FromRowGroups(): the inverse of ToRowGroups().
void FromRowGroups(DType dtype, uint64_t rows, uint64_t row_bytes, const uint8_t* src,
                   uint8_t* dst);
void FromRowGroups(DType dtype, uint64_t rows, uint64_t row_bytes, const uint8_t* src,
                   uint8_t* dst, SimdLevel level);

// CopyRowMajorRow(): row `row` (< rows) of a matrix stored in `layout`, in
// ggml's byte order, into out[0, row_bytes).
void CopyRowMajorRow(DType dtype, TensorLayout layout, uint64_t rows, uint64_t row_bytes,
                     const uint8_t* data, uint64_t row, uint8_t* out);

}  // namespace zcpack::format

#endif  // ZCPACK_FORMAT_ROW_GROUPS_H_

// Safetensors: a checking parser for untrusted .safetensors files and for the
// model.safetensors.index.json of a sharded checkpoint.
//
// File layout (all of it untrusted):
//
//   +-------------------+---------------------------+----------------------+
//   | u64 LE header_len | header_len bytes of JSON  | data section         |
//   +-------------------+---------------------------+----------------------+
//   0                   8                 8 + header_len             file end
//
// The JSON header is an object. Each key except "__metadata__" names a tensor:
//   "name": {"dtype": "BF16", "shape": [rows, cols], "data_offsets": [begin, end]}
// where [begin, end) is relative to the start of the data section.
// "__metadata__", when present, maps strings to strings.
//
// The parsers work over bytes in memory (a mapping or a fuzzer's buffer) and
// never read outside them. Checks, in order: length field present, header
// inside the file and within the limits, header begins with '{', then, as
// the JSON streams past (nlohmann's SAX interface, no document tree): nesting
// depth, tensor and metadata counts, name lengths and ranks within the
// limits, and every tensor as its entry closes: dtype known, shape
// and offsets well formed, byte count == dtype size x product(shape) (with
// overflow guards), range inside the data section, no two ranges overlapping.
//
// Status codes:
//   InvalidArgument    not a safetensors header (does not begin with '{',
//                      or the JSON is not an object)
//   DataLoss           truncated, out of bounds, malformed or inconsistent
//   Unimplemented      a dtype this reader does not know
//   ResourceExhausted  a SafetensorsLimits value is exceeded
// Messages name the file and, where there is one, the tensor.
#ifndef ZCPACK_CONVERTER_SAFETENSORS_H_
#define ZCPACK_CONVERTER_SAFETENSORS_H_

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "zcpack/format/manifest.pb.h"

namespace zcpack::converter {

// Limits on untrusted input; exceeding one gives ResourceExhausted. The
// defaults admit every real checkpoint (the safetensors project itself caps
// headers at 100 MB).
struct SafetensorsLimits {
  uint64_t max_header_bytes = uint64_t{100} << 20;
  uint64_t max_tensors = uint64_t{1} << 20;
  uint32_t max_rank = 8;
  uint64_t max_name_bytes = 4096;
  // The header is parsed as a stream of JSON events (no document tree), so
  // memory follows the tensor table; these bound what remains.
  uint64_t max_metadata_entries = uint64_t{1} << 16;
  uint32_t max_json_depth = 64;
  // For model.safetensors.index.json.
  uint64_t max_index_bytes = uint64_t{64} << 20;
};

// One tensor of a safetensors file, checked against the file's size.
struct SafetensorsEntry {
  std::string name;
  // The dtype string as stored ("BF16", "F32", "I64", ...).
  std::string dtype_name;
  // DTYPE_F32, DTYPE_F16 or DTYPE_BF16; DTYPE_UNSPECIFIED for the other
  // (known, sized) safetensors dtypes, which a caller may reject or skip.
  format::DType dtype = format::DTYPE_UNSPECIFIED;
  // Row-major, outermost first. May be empty (a scalar) or hold zeros.
  std::vector<uint64_t> shape;
  // Absolute offset in the file (8 + header_len + begin) and exact size.
  uint64_t offset = 0;
  uint64_t nbytes = 0;
};

struct SafetensorsHeader {
  // Absolute offset of the data section: 8 + header_len.
  uint64_t data_offset = 0;
  // Sorted by offset (then name): the order the bytes lie in the file.
  std::vector<SafetensorsEntry> tensors;
  // "__metadata__", sorted by key.
  std::vector<std::pair<std::string, std::string>> metadata;
};

// ParseSafetensors(): checks `file_bytes` (a whole .safetensors file) and
// returns its tensor table. `file_name` is used in messages only. On success
// every entry's [offset, offset + nbytes) lies inside `file_bytes`, so callers
// may form `file_bytes.subspan(offset, nbytes)` without further checks. No
// tensor data is read.
absl::StatusOr<SafetensorsHeader> ParseSafetensors(std::span<const uint8_t> file_bytes,
                                                   absl::string_view file_name,
                                                   const SafetensorsLimits& limits = {});

// The weight map of a sharded checkpoint.
struct SafetensorsIndex {
  // (tensor name, shard file name), sorted by tensor name.
  std::vector<std::pair<std::string, std::string>> weight_map;
  // The distinct shard file names, sorted.
  std::vector<std::string> shards;
};

// ParseSafetensorsIndex(): parses model.safetensors.index.json text. Shard
// names must be plain file names (no '/', not "." or ".."): a shard may not
// point outside the model directory. InvalidArgument if the text is not a
// JSON object with a "weight_map" object; DataLoss for a malformed entry.
absl::StatusOr<SafetensorsIndex> ParseSafetensorsIndex(absl::string_view json_text,
                                                       absl::string_view file_name,
                                                       const SafetensorsLimits& limits = {});

}  // namespace zcpack::converter

#endif  // ZCPACK_CONVERTER_SAFETENSORS_H_

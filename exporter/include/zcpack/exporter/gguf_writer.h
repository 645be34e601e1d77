// GgufMetadata and GgufFileWriter: writing a GGUF v3 file (docs/gguf.md in
// ggml-org/ggml; the layout is drawn in zcpack/converter/gguf.h, whose
// reader reads what this writes back).
//
//   "GGUF" | u32 3 | u64 tensor_count | u64 kv_count
//   kv_count x { string key | u32 type | value }
//   tensor_count x { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
//   zero padding to the alignment
//   data: tensor i at data_offset + offset_i, offset_i a multiple of the
//         alignment, in the order given, each padded with zeros to the next
//         multiple (the last one ends the file)
//
// Every integer is written little-endian with shifts (format/coding.h), never
// a struct copy. The writer decides nothing but offsets: the same metadata,
// tensors and bytes give the same file.
//
// Atomic: the file is written into a format::TempFile beside the destination
// and installed by Finish(); on any failure, or when the writer is destroyed
// before Finish(), the destination is untouched and the temporary file
// removed.
//
// Thread-safety: neither class is thread-safe.
#ifndef ZCPACK_EXPORTER_GGUF_WRITER_H_
#define ZCPACK_EXPORTER_GGUF_WRITER_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "zcpack/converter/gguf.h"

namespace zcpack::exporter {

// The longest tensor name ggml accepts (GGML_MAX_NAME 64, terminator
// included): llama.cpp refuses a file with a longer one.
inline constexpr uint64_t kGgmlMaxNameBytes = 63;
// GGML_MAX_DIMS.
inline constexpr uint32_t kGgmlMaxDims = 4;
// Alignments an exported GGUF may ask for: ggml's default (32) up to the
// container's largest (2 MiB), powers of two.
inline constexpr uint64_t kMinGgufAlignment = 32;
inline constexpr uint64_t kMaxGgufAlignment = uint64_t{1} << 21;

// CheckGgufAlignment(): InvalidArgument unless `alignment` is a power of two
// from kMinGgufAlignment to kMaxGgufAlignment.
absl::Status CheckGgufAlignment(uint64_t alignment);

// GgufMetadata: an ordered list of typed key-value pairs, each kept encoded
// (u32 type, then the value) as the file will hold it. Adding a key that is
// already present replaces its value in place, so the order is the order of
// first insertion.
class GgufMetadata {
 public:
  void AddString(absl::string_view key, absl::string_view value);
  void AddBool(absl::string_view key, bool value);
  void AddUint32(absl::string_view key, uint32_t value);
  void AddInt32(absl::string_view key, int32_t value);
  void AddUint64(absl::string_view key, uint64_t value);
  void AddInt64(absl::string_view key, int64_t value);
  void AddFloat32(absl::string_view key, float value);
  void AddFloat64(absl::string_view key, double value);
  void AddStringArray(absl::string_view key, std::span<const std::string> values);
  void AddInt32Array(absl::string_view key, std::span<const int32_t> values);
  void AddFloat32Array(absl::string_view key, std::span<const float> values);
  void AddUint64Array(absl::string_view key, std::span<const uint64_t> values);
  // AddArray(): an array of `count` elements of `element_type` (not kArray)
  // already in GGUF's encoding, such as GgufArray::encoded() of a file read
  // with converter::ParseGguf(). The caller vouches that `encoded` holds
  // exactly `count` elements.
  void AddArray(absl::string_view key, converter::GgufValueType element_type, uint64_t count,
                std::span<const uint8_t> encoded);
  // AddValue(): a value as converter::ParseGguf() read it, in its stored type.
  void AddValue(absl::string_view key, const converter::GgufValue& value);

  // ReplaceUint64(): sets the value of `key` if it is there as a uint64
  // (the encoded size unchanged); false otherwise.
  bool ReplaceUint64(absl::string_view key, uint64_t value);
  bool Contains(absl::string_view key) const;
  size_t size() const { return entries_.size(); }
  // EncodedSize(): the bytes the key-value section takes in the file.
  uint64_t EncodedSize() const;
  // AppendEncoded(): the key-value section, in order.
  void AppendEncoded(std::string* out) const;

 private:
  struct Entry {
    std::string key;
    std::string encoded;  // u32 type, then the value
  };
  void Set(absl::string_view key, std::string encoded);
  std::vector<Entry> entries_;
};

// One tensor of the file, in ggml's terms.
struct GgufTensorSpec {
  std::string name;
  uint32_t ggml_type = 0;
  // Row-major, outermost first (written reversed, as ggml's ne[]).
  std::vector<uint64_t> shape;
  // The data size, which must be what `ggml_type` and `shape` give.
  uint64_t nbytes = 0;
};

class GgufFileWriter {
 public:
  // Create(): plans the file (the metadata with general.alignment set to
  // `alignment` as a uint32, in place when the key is there, else first;
  // the tensor infos; every offset) and opens a temporary file beside
  // `destination`. InvalidArgument, naming `destination` and the tensor, for
  // a bad alignment, a name longer than kGgmlMaxNameBytes, an empty one or
  // one given twice, a rank of 0 or above kGgmlMaxDims, a ggml type of
  // unknown block size, a row length that is not whole blocks, or an nbytes
  // that is not the type's size for the shape; AlreadyExists when
  // `destination` exists and not `overwrite`; OS errors naming the path.
  static absl::StatusOr<std::unique_ptr<GgufFileWriter>> Create(
      const std::string& destination, GgufMetadata metadata, std::vector<GgufTensorSpec> tensors,
      uint64_t alignment, bool overwrite);

  ~GgufFileWriter();
  GgufFileWriter(const GgufFileWriter&) = delete;
  GgufFileWriter& operator=(const GgufFileWriter&) = delete;

  // The absolute file offset of tensor `index` (a multiple of the alignment).
  uint64_t tensor_offset(size_t index) const;
  uint64_t data_offset() const;
  uint64_t file_size() const;
  size_t num_tensors() const;

  // SetUint64(): replaces the value of uint64 key `key`, which Create() was
  // given, before Finish() writes the metadata (a checksum known only once
  // the data is written). InvalidArgument if there is no such uint64 key.
  absl::Status SetUint64(absl::string_view key, uint64_t value);

  // Append(): the next bytes of tensor `index`; a tensor's bytes come in
  // order, tensors in any order. InvalidArgument past the tensor's nbytes;
  // OS errors naming the destination.
  absl::Status Append(size_t index, std::span<const uint8_t> bytes);

  // Finish(): checks that every tensor got exactly its nbytes
  // (InvalidArgument naming the first that did not), writes the header and
  // metadata, sizes the file, fsyncs and installs it at the destination
  // (AlreadyExists if one appeared meanwhile without `overwrite`).
  absl::Status Finish();

 private:
  struct Impl;
  explicit GgufFileWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace zcpack::exporter

#endif  // ZCPACK_EXPORTER_GGUF_WRITER_H_

// GGUF: a checking parser for untrusted GGUF files (versions 2 and 3,
// little-endian), and the mapping of llama GGUF metadata to zcpack's
// ModelInfo and tokenizer blob.
//
// File layout (docs/gguf.md in ggml-org/ggml), all integers little-endian:
//
//   "GGUF" | u32 version | u64 tensor_count | u64 metadata_kv_count
//   metadata_kv_count x { string key | u32 value_type | value }
//   tensor_count x { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
//   padding to the next multiple of `general.alignment` (default 32)
//   data section: each tensor at data_start + offset, offset a multiple of the alignment
//
// A string is u64 length + bytes (no terminator). An array value is
// u32 element_type | u64 count | count values. ne[] lists dimensions innermost
// first; this reader reverses it, so shapes here are row-major, outermost first.
//
// Checks, in order: magic, version, counts against the limits and the bytes
// left, every KV (bounded strings and arrays, known types, bools 0 or 1, no
// duplicate keys), every tensor info (bounded name, rank, dimensions, a
// type of known block size whose rows are whole blocks, no duplicate names), alignment (a power of two), then every
// tensor's offset: aligned, inside the file, no overlaps.
//
// Status codes:
//   InvalidArgument    not a GGUF file (bad magic)
//   Unimplemented      version other than 2 or 3, big-endian file, a tensor
//                      type of unknown block size, nested arrays, a
//                      non-llama architecture or unsupported RoPE scaling
//   DataLoss           truncated, out of bounds, malformed or inconsistent
//   ResourceExhausted  a GgufLimits value is exceeded
// Messages name the file and, where there is one, the key or the tensor.
#ifndef ZCPACK_CONVERTER_GGUF_H_
#define ZCPACK_CONVERTER_GGUF_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "zcpack/format/manifest.pb.h"

namespace zcpack::converter {

inline constexpr uint8_t kGgufMagic[4] = {'G', 'G', 'U', 'F'};
inline constexpr uint32_t kGgufMinVersion = 2;
inline constexpr uint32_t kGgufMaxVersion = 3;
inline constexpr uint64_t kGgufDefaultAlignment = 32;

// The provenance a GGUF file written by `zcpack export` carries
// (exporter/export.h): the sources its container recorded (names, and sizes
// as uint64), the file name of the gguf-metadata tokenizer blob it was
// exported from, and the XXH3-64 (seed 0) of every tensor's bytes in file
// order, padding excluded. OpenSourceModel() records these sources instead
// of the GGUF file only when the tensor data still hashes to the recorded
// value, so that GGUF -> container -> GGUF -> container gives the same bytes.
inline constexpr char kGgufSourceNamesKey[] = "zcpack.source.names";
inline constexpr char kGgufSourceSizesKey[] = "zcpack.source.sizes";
inline constexpr char kGgufSourceTokenizerFileKey[] = "zcpack.source.tokenizer_file";
inline constexpr char kGgufSourceTensorDataXxh3Key[] = "zcpack.source.tensor_data_xxh3";

// ggml tensor types (ggml.h, enum ggml_type). The reader accepts every type
// whose block size it knows (GgmlBlockShape()); those a container can hold
// map to a format::DType (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K,
// Q5_K, Q6_K, whose blocks are
// byte-identical to ggml's), the others keep DTYPE_UNSPECIFIED so that the
// caller can name them all at once.
inline constexpr uint32_t kGgmlTypeF32 = 0;
inline constexpr uint32_t kGgmlTypeF16 = 1;
inline constexpr uint32_t kGgmlTypeQ4_0 = 2;
inline constexpr uint32_t kGgmlTypeQ4_1 = 3;
inline constexpr uint32_t kGgmlTypeQ5_0 = 6;
inline constexpr uint32_t kGgmlTypeQ5_1 = 7;
inline constexpr uint32_t kGgmlTypeQ8_0 = 8;
inline constexpr uint32_t kGgmlTypeQ4_K = 12;
inline constexpr uint32_t kGgmlTypeQ5_K = 13;
inline constexpr uint32_t kGgmlTypeQ6_K = 14;
inline constexpr uint32_t kGgmlTypeBF16 = 30;

// A ggml type's block: `elements` weights of a row stored in `bytes` bytes.
struct GgmlBlockShape {
  uint64_t elements = 0;
  uint64_t bytes = 0;
};

// GgmlTypeName(): ggml's name of a type ("Q6_K"), or "unknown".
absl::string_view GgmlTypeName(uint32_t type);

// GgmlBlockShapeOf(): the block of `type`, or {0, 0} for a type this reader
// does not know (the i-quants, removed types, anything newer).
GgmlBlockShape GgmlBlockShapeOf(uint32_t type);

// GGUF metadata value types (gguf.h, enum gguf_type).
enum class GgufValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

// GgufValueTypeName(): "uint8", ..., "float64"; "unknown" otherwise.
absl::string_view GgufValueTypeName(GgufValueType type);

// One element of a GgufArray, widened like a scalar value: unsigned integers
// to uint64_t, signed to int64_t, floats to double; strings point into the
// file bytes.
using GgufElement = std::variant<uint64_t, int64_t, double, bool, absl::string_view>;

// An array value, kept as a view of its encoded elements in the bytes given
// to ParseGguf(): a tokenizer's 20 MB token list costs no memory beyond the
// file, where vectors of std::string cost many times its size. ParseGguf()
// has checked every element (string lengths inside the file and within the
// limits, bools 0 or 1). Valid while those bytes are; cheap to copy.
class GgufArray {
 public:
  GgufArray() = default;
  // `encoded` holds exactly `size` encoded elements of `element_type`.
  GgufArray(GgufValueType element_type, uint64_t size, std::span<const uint8_t> encoded)
      : element_type_(element_type), size_(size), encoded_(encoded) {}

  GgufValueType element_type() const { return element_type_; }
  uint64_t size() const { return size_; }
  std::span<const uint8_t> encoded() const { return encoded_; }

  // ForEach(): calls `visit` with each element in order. Nothing is
  // allocated. Stops early only if `encoded` is shorter than `size` elements
  // claim, which ParseGguf() rules out.
  void ForEach(absl::FunctionRef<void(const GgufElement&)> visit) const;

 private:
  GgufValueType element_type_ = GgufValueType::kUint8;
  uint64_t size_ = 0;
  std::span<const uint8_t> encoded_;
};

// A metadata value. Integers widen to 64 bits (unsigned types to uint64_t,
// signed to int64_t), floats to double; `type` and `element_type` keep the
// stored types. String scalars are copied (each is bounded by
// GgufLimits::max_string_bytes and all of them by the file); arrays are views
// (GgufArray).
struct GgufValue {
  using Data = std::variant<uint64_t, int64_t, double, bool, std::string, GgufArray>;
  GgufValueType type = GgufValueType::kUint8;
  // The type of the elements when type == kArray.
  GgufValueType element_type = GgufValueType::kUint8;
  Data data;

  // AsUnsigned(): an integer scalar that is >= 0; nullopt otherwise.
  std::optional<uint64_t> AsUnsigned() const;
  // AsDouble(): any integer or float scalar; nullopt otherwise.
  std::optional<double> AsDouble() const;
  // AsString(): a string scalar; nullptr otherwise. Points into this value.
  const std::string* AsString() const;
  // AsArray(): an array; nullptr otherwise. Points into this value.
  const GgufArray* AsArray() const;
  // ArraySize(): the element count of an array; 0 for scalars.
  uint64_t ArraySize() const;
};

struct GgufKeyValue {
  std::string key;
  GgufValue value;
};

struct GgufTensorInfo {
  std::string name;
  uint32_t ggml_type = 0;
  // F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K or Q6_K;
  // DTYPE_UNSPECIFIED for a ggml type a
  // container cannot hold (ggml_type names it).
  format::DType dtype = format::DTYPE_UNSPECIFIED;
  // Row-major, outermost first: ne[] reversed. Empty for n_dims == 0.
  std::vector<uint64_t> shape;
  // Absolute offset in the file (data section start + stored offset) and size.
  uint64_t offset = 0;
  uint64_t nbytes = 0;
};

struct GgufFile {
  uint32_t version = 0;
  uint64_t alignment = kGgufDefaultAlignment;
  // Absolute offset of the data section.
  uint64_t data_offset = 0;
  // In file order.
  std::vector<GgufKeyValue> metadata;
  // In file order (tensor-info order, not necessarily offset order).
  std::vector<GgufTensorInfo> tensors;

  // FindMetadata(): the value stored under `key`, or nullptr. Linear in the
  // number of keys. The pointer is valid while this GgufFile is unchanged.
  const GgufValue* FindMetadata(absl::string_view key) const;
  // FindTensor(): the tensor info named `name`, or nullptr. Linear.
  const GgufTensorInfo* FindTensor(absl::string_view name) const;
};

// Limits on untrusted input; exceeding one gives ResourceExhausted. The
// defaults admit every real model (vocabularies of a few hundred thousand
// tokens, chat templates of tens of kilobytes).
struct GgufLimits {
  uint64_t max_tensors = uint64_t{1} << 20;
  uint64_t max_kv_count = uint64_t{1} << 16;
  uint64_t max_string_bytes = uint64_t{16} << 20;
  uint64_t max_name_bytes = 4096;  // keys and tensor names
  uint64_t max_array_elements = uint64_t{1} << 24;
  uint32_t max_dims = 4;  // GGML_MAX_DIMS
};

// ParseGguf(): checks `file_bytes` (a whole GGUF file) and returns its
// metadata and tensor table. `file_name` is used in messages only. On success
// every tensor's [offset, offset + nbytes) lies inside `file_bytes`. No tensor
// data is read. Array values are views into `file_bytes`, which must outlive
// the result while they are read; every count is checked against the bytes
// left in the file before it is used, and memory follows the number of keys
// and tensors, not the size of the arrays.
absl::StatusOr<GgufFile> ParseGguf(std::span<const uint8_t> file_bytes, absl::string_view file_name,
                                   const GgufLimits& limits = {});

// GgufModelInfo(): ModelInfo from llama.* metadata. general.architecture must
// be "llama" (Unimplemented otherwise). head_dim comes from
// llama.attention.key_length, else llama.rope.dimension_count, else
// embedding_length / head_count; vocab_size from llama.vocab_size, else the
// tokenizer.ggml.tokens array, else the rows of token_embd.weight. Tied
// embeddings when there is no output.weight; attention_bias when
// blk.0.attn_q.bias exists; rope_layout is ROPE_LAYOUT_INTERLEAVED (llama.cpp
// permutes Q/K rows into it). DataLoss for a missing or mistyped required key
// or hyperparameters that contradict each other.
absl::StatusOr<format::ModelInfo> GgufModelInfo(const GgufFile& gguf, absl::string_view file_name);

// GgufTokenizerBlob(): the tokenizer.* metadata as one JSON object (key ->
// value; arrays as JSON arrays; keys sorted; float32 values in their shortest
// float32 form, float64 in their shortest double form, negative zero as
// -0.0, NaN and infinities as null), zstd-compressed into a blob of kind "gguf-metadata" named
// `file_name`. nullopt when there are no tokenizer.* keys. Strings that are
// not valid UTF-8 (the GGUF spec requires UTF-8) have the bad bytes replaced
// by U+FFFD. nullopt too when tokenizer.ggml.model says there is no
// vocabulary ("none" or "no_vocab", as an export of a container without a
// tokenizer writes for llama.cpp): there is nothing to tokenize with.
// The JSON text is streamed into the compressor from the array
// views, never held whole: memory is the compressed blob. The bytes `gguf`
// was parsed from must still be alive.
absl::StatusOr<std::optional<format::TokenizerBlob>> GgufTokenizerBlob(const GgufFile& gguf,
                                                                       absl::string_view file_name,
                                                                       int zstd_level);

}  // namespace zcpack::converter

#endif  // ZCPACK_CONVERTER_GGUF_H_

// GgufTestWriter: builds GGUF files byte by byte for tests and fuzz seeds, and
// TinyLlamaGguf(): a complete, valid llama GGUF for a given ModelInfo.
//
// The writer encodes exactly what it is told, including values a reader must
// reject (a wrong version, a misaligned tensor offset, a raw KV of any type),
// so tests can break files on purpose. Free of GoogleTest.
#ifndef ZCPACK_TESTS_CONVERTER_GGUF_TEST_WRITER_H_
#define ZCPACK_TESTS_CONVERTER_GGUF_TEST_WRITER_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "zcpack/format/manifest.pb.h"

namespace zcpack::testing {

class GgufTestWriter {
 public:
  // The version field (default 3) and the layout alignment (default 32). The
  // alignment is NOT written as general.alignment: add that key explicitly.
  GgufTestWriter& SetVersion(uint32_t version);
  GgufTestWriter& SetAlignment(uint64_t alignment);

  // Metadata, in call order.
  GgufTestWriter& AddUint32(const std::string& key, uint32_t value);
  GgufTestWriter& AddInt32(const std::string& key, int32_t value);
  GgufTestWriter& AddUint64(const std::string& key, uint64_t value);
  GgufTestWriter& AddFloat32(const std::string& key, float value);
  GgufTestWriter& AddBool(const std::string& key, bool value);
  GgufTestWriter& AddString(const std::string& key, const std::string& value);
  GgufTestWriter& AddStringArray(const std::string& key, const std::vector<std::string>& values);
  GgufTestWriter& AddFloat32Array(const std::string& key, const std::vector<float>& values);
  GgufTestWriter& AddInt32Array(const std::string& key, const std::vector<int32_t>& values);
  // A key, the value type `type`, then `value_bytes` verbatim.
  GgufTestWriter& AddRaw(const std::string& key, uint32_t type,
                         const std::vector<uint8_t>& value_bytes);

  // A tensor: `shape` row-major (outermost first; written reversed as ne[]),
  // `data` its bytes. Data is laid out in call order, each tensor at the next
  // multiple of the alignment, unless `offset` gives the stored (data-relative)
  // offset verbatim.
  GgufTestWriter& AddTensor(const std::string& name, uint32_t ggml_type,
                            const std::vector<uint64_t>& shape, const std::vector<uint8_t>& data,
                            std::optional<uint64_t> offset = std::nullopt);

  // Build(): the whole file.
  std::vector<uint8_t> Build() const;

 private:
  struct Tensor {
    std::string name;
    uint32_t ggml_type;
    std::vector<uint64_t> shape;
    std::vector<uint8_t> data;
    std::optional<uint64_t> offset;
  };
  void Key(const std::string& key, uint32_t type);

  uint32_t version_ = 3;
  uint64_t alignment_ = 32;
  uint64_t kv_count_ = 0;
  std::vector<uint8_t> kv_bytes_;
  std::vector<Tensor> tensors_;
};

// Little-endian encoding of `values` as f32, f16 or bf16 bytes.
std::vector<uint8_t> EncodeFloats(const std::vector<float>& values, format::DType dtype);

// Deterministic values in [-1, 1).
std::vector<float> PseudoRandomFloats(uint64_t count, uint64_t seed);

// Strings shaped like a BPE merge list ("ab cd"), about `total_bytes` of them
// as GGUF encodes them (8-byte length + text), varied enough that they do not
// compress to nothing.
std::vector<std::string> MergeLikeStrings(uint64_t total_bytes);

// TinyLlamaGguf(): a valid llama GGUF holding every tensor ExpectedTensors()
// lists for `model` (GGUF names; 2-D tensors in `dtype`, 1-D in F32, as
// llama.cpp writes them), llama.* metadata matching `model`, and a small
// tokenizer (tokenizer.ggml.model/tokens/scores/token_type, bos and eos ids).
// `model` must pass ValidateModelInfo(); its rope_layout is ignored.
// `merges`, when not empty, is written as tokenizer.ggml.merges (a string
// array that can be made as large as a real BPE merge list).
// `dtype` may also be q4_0, q8_0 or q4_k (blocks from the converter's own
// quantizers, byte-identical to ggml's); the 2-D row lengths must then be
// multiples of its block size. `ggml_types` overrides the ggml type of the
// tensors it names (GGUF names), whose data is then all zero bytes (blocks of
// zeros, the right size for the type: enough to test a refusal of Q6_K, say).
std::vector<uint8_t> TinyLlamaGguf(const format::ModelInfo& model, format::DType dtype,
                                   uint64_t seed = 1, const std::vector<std::string>& merges = {},
                                   const std::map<std::string, uint32_t>& ggml_types = {});

// TensorBytes(): `values` stored as `dtype` (f32, f16, bf16, q4_0, q8_0,
// q4_k, and for fixtures q4_1, q5_0, q5_1; row-major, as in GGUF).
std::vector<uint8_t> TensorBytes(const std::vector<float>& values, format::DType dtype);

// GgmlTypeOf(): the ggml type id of a dtype TensorBytes() writes (BF16's
// for any other).
uint32_t GgmlTypeOf(format::DType dtype);

// QuantizedLlamaModelInfo(): TinyLlamaModelInfo() with rows of 256 weights
// (hidden and FFN size 256, head_dim 64), so that every matrix can be q4_k.
format::ModelInfo QuantizedLlamaModelInfo();

// TinyLlamaModelInfo(): a small valid llama ModelInfo (hidden 16, 2 layers,
// 4 heads, 2 KV heads, head_dim 4, ffn 32, vocab 24, untied).
format::ModelInfo TinyLlamaModelInfo();

}  // namespace zcpack::testing

#endif  // ZCPACK_TESTS_CONVERTER_GGUF_TEST_WRITER_H_

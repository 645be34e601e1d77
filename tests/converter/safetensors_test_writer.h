// SafetensorsTestWriter: builds .safetensors files for tests and fuzz seeds
// (the JSON header through nlohmann), and WriteTinyHfModel(): a complete
// Hugging Face model directory (config.json, weights single or sharded with
// an index, tokenizer.json) for a given ModelInfo. Free of GoogleTest.
//
// The writer encodes exactly what it is told, including inconsistent headers
// (wrong offsets, unknown dtypes, a raw header text), so tests can break files
// on purpose.
#ifndef ZCPACK_TESTS_CONVERTER_SAFETENSORS_TEST_WRITER_H_
#define ZCPACK_TESTS_CONVERTER_SAFETENSORS_TEST_WRITER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "zcpack/format/manifest.pb.h"

namespace zcpack::testing {

class SafetensorsTestWriter {
 public:
  // A tensor, laid out after the previous one. `dtype` is the safetensors
  // string ("F32", "F16", "BF16", ...). `data_offsets` overrides the stored
  // [begin, end) (the bytes are still laid out as if it were not given).
  SafetensorsTestWriter& AddTensor(const std::string& name, const std::string& dtype,
                                   const std::vector<uint64_t>& shape,
                                   const std::vector<uint8_t>& data,
                                   std::optional<std::pair<uint64_t, uint64_t>> data_offsets =
                                       std::nullopt);
  // A float tensor, encoded with EncodeFloats() (gguf_test_writer.h).
  SafetensorsTestWriter& AddFloatTensor(const std::string& name, format::DType dtype,
                                        const std::vector<uint64_t>& shape,
                                        const std::vector<float>& values);
  SafetensorsTestWriter& AddMetadata(const std::string& key, const std::string& value);
  // Replaces the generated header JSON with `text` verbatim.
  SafetensorsTestWriter& SetHeaderText(std::string text);

  // Build(): u64 header length, the header (padded with spaces to a multiple
  // of 8, as the safetensors library does), then the data.
  std::vector<uint8_t> Build() const;
  // HeaderText(): the header JSON Build() would write (before padding).
  std::string HeaderText() const;

 private:
  struct Tensor {
    std::string name;
    std::string dtype;
    std::vector<uint64_t> shape;
    std::vector<uint8_t> data;
    std::optional<std::pair<uint64_t, uint64_t>> data_offsets;
  };
  std::vector<Tensor> tensors_;
  std::vector<std::pair<std::string, std::string>> metadata_;
  std::optional<std::string> header_text_;
};

// SafetensorsDTypeName(): "F32", "F16" or "BF16".
std::string SafetensorsDTypeName(format::DType dtype);

// HfConfigJson(): config.json text describing `model` with the class named
// by its architecture ("llama" -> LlamaForCausalLM, "mistral", "qwen2").
std::string HfConfigJson(const format::ModelInfo& model);

// How WriteTinyHfModel() scales its pseudo-random values.
enum class TinyWeights {
  // Every value uniform in [-1, 1): fine for byte-level checks; as a model
  // its activations grow layer by layer and attention softmaxes saturate, so
  // its logits amplify any rounding chaotically.
  kUnit,
  // Scaled like a trained model's: matrices with standard deviation
  // 1 / sqrt(columns), norm weights 1 +- 0.1, biases +- 0.1. For checks of
  // the forward pass against a reference within a tolerance.
  kTrainedScale,
};

// WriteTinyHfModel(): writes into the existing folder `dir` a Hugging Face
// model for `model`: config.json, every ExpectedTensors() tensor under its HF
// name in `dtype` (deterministic values from `seed`, scaled as `weights`
// says), as model.safetensors when `shards` is 1, else as
// model-0000i-of-0000n.safetensors shards plus model.safetensors.index.json,
// and a small tokenizer.json.
absl::Status WriteTinyHfModel(const std::string& dir, const format::ModelInfo& model,
                              format::DType dtype, int shards = 1, uint64_t seed = 1,
                              TinyWeights weights = TinyWeights::kUnit);

}  // namespace zcpack::testing

#endif  // ZCPACK_TESTS_CONVERTER_SAFETENSORS_TEST_WRITER_H_

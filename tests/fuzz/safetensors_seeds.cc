// Seeds for zcpack_safetensors_fuzzer: valid safetensors files (every float
// dtype, a small model's worth of tensors, metadata, empty and scalar
// tensors), a sharded index and two config.json files. Usage: <folder>.
#include <cstdio>
#include <string>
#include <vector>

#include "tests/converter/gguf_test_writer.h"
#include "tests/converter/safetensors_test_writer.h"
#include "tests/testing/container_fixtures.h"
#include "zcpack/converter/architecture.h"

namespace {

using namespace zcpack;

bool Write(const std::string& dir, const std::string& name, const std::vector<uint8_t>& bytes) {
  const absl::Status s = testing::WriteFileBytes(dir + "/" + name, bytes);
  if (!s.ok()) std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
  return s.ok();
}

std::vector<uint8_t> Text(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <folder>\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  bool ok = true;
  for (format::DType dtype : {format::DTYPE_F32, format::DTYPE_F16, format::DTYPE_BF16}) {
    testing::SafetensorsTestWriter w;
    w.AddMetadata("format", "pt")
        .AddFloatTensor("a", dtype, {2, 3}, testing::PseudoRandomFloats(6, 1))
        .AddFloatTensor("b", dtype, {4}, testing::PseudoRandomFloats(4, 2))
        .AddTensor("empty", testing::SafetensorsDTypeName(dtype), {0}, {});
    ok &= Write(dir, "small_" + testing::SafetensorsDTypeName(dtype) + ".safetensors", w.Build());
  }
  // A tiny model's tensors under their Hugging Face names.
  format::ModelInfo model = testing::TinyLlamaModelInfo();
  model.set_num_layers(1);
  testing::SafetensorsTestWriter tiny;
  auto expected = converter::ExpectedTensors(model);
  if (!expected.ok()) return 1;
  for (const converter::ExpectedTensor& e : *expected) {
    uint64_t count = 1;
    for (uint64_t d : e.shape) count *= d;
    tiny.AddFloatTensor(converter::TensorName(e.role, e.layer, converter::TensorNaming::kHuggingFace),
                        format::DTYPE_BF16, e.shape, testing::PseudoRandomFloats(count, count));
  }
  ok &= Write(dir, "tiny_model.safetensors", tiny.Build());
  ok &= Write(dir, "index.json",
              Text(R"({"metadata": {"total_size": 64}, "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}})"));
  ok &= Write(dir, "llama_config.json", Text(testing::HfConfigJson(model)));
  model.set_architecture("qwen2");
  model.set_attention_bias(true);
  model.set_tied_embeddings(true);
  ok &= Write(dir, "qwen2_config.json", Text(testing::HfConfigJson(model)));
  return ok ? 0 : 1;
}

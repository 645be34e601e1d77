// Seeds for zcpack_gguf_fuzzer: tiny llama GGUF files (F32, F16 and BF16
// weights; Q4_0, Q8_0 and Q4_K blocks, one with a Q6_K tensor; tied embeddings; Q/K/V biases; version 2; 64-byte alignment) and
// a file with one metadata value of every kind. Usage: <folder>.
#include <cstdio>
#include <string>
#include <vector>

#include "tests/converter/gguf_test_writer.h"
#include "tests/testing/container_fixtures.h"
#include "zcpack/converter/gguf.h"

namespace {

using namespace zcpack;

bool Write(const std::string& dir, const std::string& name, const std::vector<uint8_t>& bytes) {
  const absl::Status s = testing::WriteFileBytes(dir + "/" + name, bytes);
  if (!s.ok()) std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
  return s.ok();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <folder>\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  bool ok = true;
  format::ModelInfo model = testing::TinyLlamaModelInfo();
  model.set_num_layers(1);
  ok &= Write(dir, "tiny_f32.gguf", testing::TinyLlamaGguf(model, format::DTYPE_F32));
  ok &= Write(dir, "tiny_f16.gguf", testing::TinyLlamaGguf(model, format::DTYPE_F16));
  ok &= Write(dir, "tiny_bf16.gguf", testing::TinyLlamaGguf(model, format::DTYPE_BF16));
  model.set_tied_embeddings(true);
  model.set_attention_bias(true);
  ok &= Write(dir, "tiny_tied_bias.gguf", testing::TinyLlamaGguf(model, format::DTYPE_F16));
  format::ModelInfo quantized = testing::QuantizedLlamaModelInfo();
  quantized.set_num_layers(1);
  ok &= Write(dir, "tiny_q4_0.gguf", testing::TinyLlamaGguf(quantized, format::DTYPE_Q4_0));
  ok &= Write(dir, "tiny_q8_0.gguf", testing::TinyLlamaGguf(quantized, format::DTYPE_Q8_0));
  ok &= Write(dir, "tiny_q4_1.gguf", testing::TinyLlamaGguf(quantized, format::DTYPE_Q4_1));
  ok &= Write(dir, "tiny_q5_0.gguf", testing::TinyLlamaGguf(quantized, format::DTYPE_Q5_0));
  ok &= Write(dir, "tiny_q5_1.gguf", testing::TinyLlamaGguf(quantized, format::DTYPE_Q5_1));
  ok &= Write(dir, "tiny_q4_k_q6_k.gguf",
              testing::TinyLlamaGguf(quantized, format::DTYPE_Q4_K, 1, {},
                                     {{"output.weight", converter::kGgmlTypeQ6_K}}));

  testing::GgufTestWriter kinds;
  kinds.SetVersion(2)
      .SetAlignment(64)
      .AddUint32("general.alignment", 64)
      .AddString("general.architecture", "llama")
      .AddRaw("u8", 0, {7})
      .AddRaw("i8", 1, {0xff})
      .AddRaw("u16", 2, {1, 2})
      .AddRaw("i16", 3, {0xfe, 0xff})
      .AddInt32("i32", -5)
      .AddFloat32("f32", 1.5f)
      .AddBool("bool", true)
      .AddUint64("u64", 1234567890123ull)
      .AddRaw("i64", 11, {1, 0, 0, 0, 0, 0, 0, 0x80})
      .AddRaw("f64", 12, {0, 0, 0, 0, 0, 0, 0xf0, 0x3f})
      .AddStringArray("tokenizer.ggml.tokens", {"a", "b", "<s>"})
      .AddFloat32Array("tokenizer.ggml.scores", {0.0f, -1.0f, -2.0f})
      .AddInt32Array("tokenizer.ggml.token_type", {1, 1, 3})
      .AddTensor("token_embd.weight", converter::kGgmlTypeF32, {3, 2},
                 testing::EncodeFloats(testing::PseudoRandomFloats(6, 1), format::DTYPE_F32))
      .AddTensor("blk.0.attn_norm.weight", converter::kGgmlTypeF16, {2},
                 testing::EncodeFloats(testing::PseudoRandomFloats(2, 2), format::DTYPE_F16));
  ok &= Write(dir, "every_kind.gguf", kinds.Build());
  return ok ? 0 : 1;
}

// Containers that carry a tokenizer, for the tests of text in and text out:
// the tiny synthetic llama (tiny_model.h) with a small SentencePiece-style
// vocabulary written the way the converter carries a GGUF source's
// tokenizer (a "gguf-metadata" blob: the tokenizer.* keys as JSON).
#ifndef ZCPACK_TESTS_RUNTIME_TEXT_MODEL_H_
#define ZCPACK_TESTS_RUNTIME_TEXT_MODEL_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/runtime/tiny_model.h"
#include "tests/testing/container_fixtures.h"
#include "zcpack/converter/source_model.h"
#include "zcpack/format/container_reader.h"
#include "zcpack/format/container_writer.h"

namespace zcpack::testing {

// The tiny shape's vocabulary size (converter/synth.cc).
inline constexpr uint32_t kTinyVocab = 512;

// Ids of the special tokens in TextVocabulary().
inline constexpr int32_t kUnkId = 0, kBosId = 1, kEosId = 2, kImStartId = 259, kImEndId = 260;

// A ChatML template (the markers Detect() reads, the way Qwen writes them).
inline constexpr char kChatMlTemplate[] =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}";

// TextVocabulary(): the GGUF tokenizer.* keys of a llama (SPM) vocabulary of
// `size` tokens: <unk>, <s>, </s>, the 256 byte tokens <0x00>..<0xFF> (so any
// text tokenizes), the control tokens <|im_start|> and <|im_end|>, "▁" and
// the pieces "▁a".."▁z", "▁the", "▁time", then filler "x<id>". `overrides`
// replaces the text (and makes normal, or byte for "<0x..>") of the tokens it
// names, for tests that need given ids to decode to given bytes; `eos`
// replaces </s>'s id as the EOS id.
inline nlohmann::json TextVocabulary(uint32_t size = kTinyVocab,
                                     const std::string& chat_template = "",
                                     const std::map<int32_t, std::string>& overrides = {},
                                     int32_t eos = kEosId) {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  const auto add = [&](std::string text, int32_t type) {
    tokens.push_back(std::move(text));
    types.push_back(type);
  };
  add("<unk>", 2);
  add("<s>", 3);
  add("</s>", 3);
  for (int b = 0; b < 256; ++b) add(absl::StrFormat("<0x%02X>", b), 6);
  add("<|im_start|>", 3);
  add("<|im_end|>", 3);
  add("\xe2\x96\x81", 1);
  for (char c = 'a'; c <= 'z'; ++c) add(absl::StrCat("\xe2\x96\x81", std::string(1, c)), 1);
  add("\xe2\x96\x81the", 1);
  add("\xe2\x96\x81time", 1);
  while (tokens.size() < size) add(absl::StrCat("x", tokens.size()), 1);
  tokens.resize(size);
  types.resize(size);
  if (!overrides.empty()) {
    // Overridden ids must not duplicate a token: drop the byte table.
    for (int b = 0; b < 256; ++b) tokens[3 + b] = absl::StrCat("x", 3 + b), types[3 + b] = 1;
  }
  for (const auto& [id, text] : overrides) {
    tokens[id] = text;
    types[id] = text.rfind("<0x", 0) == 0 ? 6 : 1;
  }
  std::vector<float> scores;
  for (uint32_t i = 0; i < size; ++i) {
    // Longer pieces score higher, so SPM merges prefer them.
    scores.push_back(static_cast<float>(tokens[i].size()) - static_cast<float>(i) * 1e-4f);
  }
  nlohmann::json j = {{"tokenizer.ggml.model", "llama"},
                      {"tokenizer.ggml.pre", "default"},
                      {"tokenizer.ggml.tokens", tokens},
                      {"tokenizer.ggml.scores", scores},
                      {"tokenizer.ggml.token_type", types},
                      {"tokenizer.ggml.bos_token_id", kBosId},
                      {"tokenizer.ggml.eos_token_id", eos},
                      {"tokenizer.ggml.unknown_token_id", kUnkId},
                      {"tokenizer.ggml.add_bos_token", true},
                      {"tokenizer.ggml.add_eos_token", false}};
  if (!chat_template.empty()) j["tokenizer.chat_template"] = chat_template;
  return j;
}

// GgufMetadataBlob(): `keys` as the converter carries a GGUF's tokenizer.
inline format::TokenizerBlob GgufMetadataBlob(const nlohmann::json& keys) {
  const std::string text = keys.dump();
  auto blob = converter::MakeTokenizerBlob(
      "gguf-metadata", "tiny.gguf",
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()), 3);
  EXPECT_TRUE(blob.ok()) << blob.status();
  return blob.value_or(format::TokenizerBlob());
}

// WithTokenizers(): writes a copy of container `in` to `out` whose manifest
// carries `blobs` as its tokenizers, through the ContainerWriter (so the
// blobs are stored out of line, as a conversion stores them); the tensors,
// their layouts and bytes unchanged.
inline void WithTokenizers(const std::string& in, const std::string& out,
                           const std::vector<format::TokenizerBlob>& blobs) {
  auto c = format::Container::Open(in);
  ASSERT_TRUE(c.ok()) << c.status();
  std::vector<format::TensorPlan> plans;
  for (size_t i = 0; i < (*c)->num_tensors(); ++i) {
    const format::TensorEntry& t = (*c)->tensor(i);
    format::TensorPlan plan;
    plan.name = t.name();
    plan.role = t.role();
    plan.layer = t.layer();
    plan.dtype = t.dtype();
    plan.shape.assign(t.shape().begin(), t.shape().end());
    plan.source_dtype = t.source_dtype();
    plan.layout = t.layout();
    plans.push_back(std::move(plan));
  }
  format::WriterOptions options;
  options.alignment = (*c)->alignment();
  options.overwrite = true;
  auto writer = format::ContainerWriter::Create(out, plans, options);
  ASSERT_TRUE(writer.ok()) << writer.status();
  for (size_t i = 0; i < (*c)->num_tensors(); ++i) {
    ASSERT_TRUE((*writer)->WriteTensor(i, (*c)->TensorData(i)).ok());
  }
  format::Manifest manifest = (*c)->manifest();
  manifest.clear_tokenizers();
  for (const format::TokenizerBlob& b : blobs) *manifest.add_tokenizers() = b;
  const absl::Status finished = (*writer)->Finish(manifest);
  ASSERT_TRUE(finished.ok()) << finished;
}

// TextModel(): the tiny model converted into `dir`, carrying
// TextVocabulary(kTinyVocab, chat_template, overrides, eos) as its
// tokenizer; returns its path. `name` must differ between calls in one dir.
inline std::string TextModel(const ScopedTempDir& dir, const std::string& name,
                             const std::string& chat_template = "",
                             const std::map<int32_t, std::string>& overrides = {},
                             int32_t eos = kEosId) {
  const std::string plain = ConvertTinyModel(dir, name + "-plain");
  const std::string path = dir.File(name + ".zcpack");
  WithTokenizers(plain, path,
                 {GgufMetadataBlob(TextVocabulary(kTinyVocab, chat_template, overrides, eos))});
  return path;
}

}  // namespace zcpack::testing

#endif  // ZCPACK_TESTS_RUNTIME_TEXT_MODEL_H_

// Tokenizer throughput on one thread: Tokenize() over 1 MiB of mixed text
// (this repository's C++ sources and docs interleaved with the multilingual
// llama.cpp test texts of tests/data/vocab, as tools/tokenize_vs_llamacpp.sh
// builds it, without git), for each of the ten vocabularies in
// tests/data/vocab. Loading the vocabulary is not timed. Prints
// bytes_per_second (MB/s, over CPU time) and tokens/s;
// tools/tokenize_vs_llamacpp.sh checks the ids against llama.cpp.
#include <zstd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "zcpack/converter/gguf.h"
#include "zcpack/runtime/tokenizer.h"

namespace zcpack {
namespace {

namespace fs = std::filesystem;

constexpr size_t kTextBytes = size_t{1} << 20;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Sources and docs under runtime/, tools/, format/, converter/ and
// validator/ in path order, each followed by the next .inp text, repeated
// and cut to kTextBytes.
std::string MixedText() {
  const fs::path root(ZCPACK_SOURCE_DIR);
  std::vector<fs::path> inputs, files;
  for (const auto& e : fs::directory_iterator(root / "tests/data/vocab")) {
    if (e.path().extension() == ".inp") inputs.push_back(e.path());
  }
  for (const char* dir : {"converter", "format", "runtime", "tools", "validator"}) {
    for (const auto& e : fs::recursive_directory_iterator(root / dir)) {
      const std::string ext = e.path().extension().string();
      if (e.is_regular_file() && (ext == ".cc" || ext == ".h" || ext == ".md")) {
        files.push_back(e.path());
      }
    }
  }
  std::sort(inputs.begin(), inputs.end());
  std::sort(files.begin(), files.end());
  std::string text;
  size_t i = 0;
  while (text.size() < kTextBytes && !files.empty()) {
    for (const fs::path& f : files) {
      text += ReadFile(f);
      if (!inputs.empty()) text += ReadFile(inputs[i++ % inputs.size()]);
      if (text.size() >= kTextBytes) break;
    }
  }
  text.resize(std::min(text.size(), kTextBytes));
  return text;
}

std::unique_ptr<runtime::Tokenizer> LoadVocab(const std::string& name) {
  const std::string path =
      absl::StrCat(ZCPACK_SOURCE_DIR, "/tests/data/vocab/ggml-vocab-", name, ".gguf");
  const std::string bytes = ReadFile(path);
  auto gguf = converter::ParseGguf(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), path);
  if (!gguf.ok()) return nullptr;
  auto blob = converter::GgufTokenizerBlob(*gguf, path, 1);
  if (!blob.ok() || !blob->has_value()) return nullptr;
  std::string json((*blob)->raw_size(), '\0');
  ZSTD_decompress(json.data(), json.size(), (*blob)->zstd_data().data(),
                  (*blob)->zstd_data().size());
  auto vocab = runtime::VocabularyFromGgufJson(json, path);
  if (!vocab.ok()) return nullptr;
  auto tokenizer = runtime::Tokenizer::Create(*std::move(vocab));
  return tokenizer.ok() ? *std::move(tokenizer) : nullptr;
}

void BM_Tokenize(benchmark::State& state, const std::string& name) {
  static const std::string* text = new std::string(MixedText());
  const std::unique_ptr<runtime::Tokenizer> tokenizer = LoadVocab(name);
  if (tokenizer == nullptr) {
    state.SkipWithError(absl::StrCat("cannot load ", name).c_str());
    return;
  }
  size_t tokens = 0;
  for (auto _ : state) {
    const std::vector<int32_t> ids = tokenizer->Tokenize(*text);
    tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text->size()));
  state.counters["tokens"] = static_cast<double>(tokens);
  state.counters["tokens_per_second"] = benchmark::Counter(
      static_cast<double>(tokens), benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace
}  // namespace zcpack

int main(int argc, char** argv) {
  for (const char* name : {"llama-spm", "llama-bpe", "qwen2", "phi-3", "gpt-2", "starcoder", "refact",
                           "mpt", "falcon", "deepseek-coder"}) {
    benchmark::RegisterBenchmark(absl::StrCat("BM_Tokenize/", name).c_str(),
                                 [name](benchmark::State& state) {
                                   zcpack::BM_Tokenize(state, name);
                                 })
        ->Unit(benchmark::kMillisecond)
        ->MinTime(2.0);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

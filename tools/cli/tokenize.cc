// zcpack tokenize: text to token ids with a container's or a GGUF file's
// tokenizer, as llama.cpp's llama-tokenize prints them.
#include <zstd.h>

#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "tools/cli/commands.h"
#include "tools/cli/input_kind.h"
#include "tools/cli/json_output.h"
#include "zcpack/converter/gguf.h"
#include "zcpack/converter/source_model.h"
#include "zcpack/format/container_reader.h"
#include "zcpack/format/utf8.h"
#include "zcpack/runtime/tokenizer.h"
#include "zcpack/status_macros.h"

namespace zcpack::cli {
namespace {

struct LoadedTokenizer {
  std::unique_ptr<runtime::Tokenizer> tokenizer;
  std::string source;  // "gguf", or the container blob's kind
};

absl::StatusOr<LoadedTokenizer> LoadFromGguf(const std::string& path,
                                              std::span<const uint8_t> bytes) {
  const std::string name = format::EscapeInvalidUtf8(path);
  ZCPACK_ASSIGN_OR_RETURN(const converter::GgufFile gguf, converter::ParseGguf(bytes, name));
  // llama.cpp keys Phi-3's special-token white-space rule on general.name.
  std::string model_name;
  if (const converter::GgufValue* value = gguf.FindMetadata("general.name")) {
    if (const std::string* s = value->AsString()) model_name = *s;
  }
  ZCPACK_ASSIGN_OR_RETURN(std::optional<format::TokenizerBlob> blob,
                          converter::GgufTokenizerBlob(gguf, name, /*zstd_level=*/1));
  if (!blob.has_value()) {
    return absl::FailedPreconditionError(
        absl::StrCat(name, ": the GGUF file has no tokenizer.* metadata"));
  }
  std::string raw(blob->raw_size(), '\0');
  const size_t n =
      ZSTD_decompress(raw.data(), raw.size(), blob->zstd_data().data(), blob->zstd_data().size());
  if (ZSTD_isError(n) || n != raw.size()) {
    return absl::InternalError(absl::StrCat(name, ": could not re-read its tokenizer metadata"));
  }
  ZCPACK_ASSIGN_OR_RETURN(runtime::Vocabulary vocab, runtime::VocabularyFromGgufJson(raw, name));
  vocab.model_name = format::ReplaceInvalidUtf8(model_name);
  LoadedTokenizer loaded{nullptr, "gguf"};
  ZCPACK_ASSIGN_OR_RETURN(loaded.tokenizer, runtime::Tokenizer::Create(std::move(vocab)));
  return loaded;
}

// A container's tokenizer, as the runtime decodes it (Model::tokenizer()).
absl::StatusOr<LoadedTokenizer> LoadFromContainer(const std::string& path) {
  ZCPACK_ASSIGN_OR_RETURN(auto container, format::Container::Open(path));
  LoadedTokenizer loaded;
  auto tokenizer = runtime::TokenizerFromContainer(*container, &loaded.source);
  if (absl::IsNotFound(tokenizer.status())) {
    // The file is there; what it lacks is a tokenizer: the input cannot be
    // used (exit 1, as for a GGUF file without tokenizer.* keys), not a
    // missing file (3). The runtime's C API keeps NOT_FOUND.
    return absl::FailedPreconditionError(tokenizer.status().message());
  }
  ZCPACK_ASSIGN_OR_RETURN(loaded.tokenizer, std::move(tokenizer));
  return loaded;
}

absl::StatusOr<std::string> ReadText(const TokenizeCommandOptions& options) {
  const bool from_stdin = options.file == "-" || (options.file.empty() && options.text == "-");
  if (from_stdin) {
    std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    if (std::cin.bad()) return absl::UnavailableError("cannot read the text from stdin");
    return text;
  }
  if (options.file.empty()) return options.text;
  ZCPACK_ASSIGN_OR_RETURN(const converter::MappedFile file, converter::MappedFile::Open(options.file));
  const std::span<const uint8_t> bytes = file.bytes();
  std::string text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  ZCPACK_RETURN_IF_ERROR(file.CheckMapping());
  return text;
}

}  // namespace

absl::Status CheckTokenizeOptions(const TokenizeCommandOptions& options) {
  const bool has_text = options.has_text;
  const bool has_file = !options.file.empty();
  if (has_text == has_file) {
    return absl::InvalidArgumentError(
        has_text ? "give the text either as an argument or with --file, not both"
                 : "give the text to tokenize: an argument, '-' for stdin, or --file PATH");
  }
  return absl::OkStatus();
}

absl::Status RunTokenize(const TokenizeCommandOptions& options, std::ostream& out) {
  ZCPACK_RETURN_IF_ERROR(CheckTokenizeOptions(options));
  ZCPACK_RETURN_IF_ERROR(ExpectTokenizerFile(options.path));
  // GGUF files start with their magic; anything else is opened as a container
  // (whose reader says clearly when it is not one).
  absl::StatusOr<LoadedTokenizer> loaded;
  {
    ZCPACK_ASSIGN_OR_RETURN(const converter::MappedFile file,
                            converter::MappedFile::Open(options.path));
    const std::span<const uint8_t> bytes = file.bytes();
    const bool gguf = bytes.size() >= 4 && std::equal(bytes.begin(), bytes.begin() + 4,
                                                      std::begin(converter::kGgufMagic));
    if (gguf) {
      loaded = LoadFromGguf(options.path, bytes);
      ZCPACK_RETURN_IF_ERROR(file.CheckMapping());
    }
    if (!gguf) loaded = LoadFromContainer(options.path);
  }
  if (!loaded.ok()) return loaded.status();
  ZCPACK_ASSIGN_OR_RETURN(const std::string text, ReadText(options));
  const std::unique_ptr<runtime::Tokenizer>& tokenizer = loaded->tokenizer;
  const runtime::TokenizerModel model = tokenizer->vocabulary().model;
  const std::string& pre = tokenizer->vocabulary().pre;
  const std::vector<int32_t> ids =
      tokenizer->Tokenize(text, {.add_special = options.bos, .parse_special = options.special});
  if (options.json) {
    // docs/JSON.md, "tokenize".
    nlohmann::json report;
    report["input"] = options.path;
    report["ids"] = ids;
    report["token_count"] = ids.size();
    report["text_bytes"] = text.size();
    report["tokenizer"] = {
        {"source", loaded->source},
        {"model", model == runtime::TokenizerModel::kSpm ? "spm" : "bpe"},
        {"pre", model == runtime::TokenizerModel::kSpm ? "" : pre},
        {"vocab_size", tokenizer->size()},
    };
    report["bos"] = options.bos;
    report["special"] = options.special;
    out << ReportText("tokenize", report) << "\n";
    return absl::OkStatus();
  }
  out << absl::StrJoin(ids, " ") << "\n";
  return absl::OkStatus();
}

}  // namespace zcpack::cli

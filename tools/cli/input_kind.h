// What kind of file a command was given, so that a command given the wrong
// kind says what the file is and what to run instead, rather than a reader's
// error about bytes it was never meant to parse ("header of
// 727905342071200393 bytes runs past the end" for a container given to
// convert).
#ifndef ZCPACK_TOOLS_CLI_INPUT_KIND_H_
#define ZCPACK_TOOLS_CLI_INPUT_KIND_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace zcpack::cli {

enum class InputKind {
  kContainer,    // starts with the zcpack magic (format_constants.h)
  kGguf,         // starts with "GGUF"
  kSafetensors,  // an 8-byte header length that fits the file, then '{'
  kModelFolder,  // a folder with config.json or model.safetensors(.index.json)
  kOther,        // none of these, or unreadable: the command's reader says why
};

// DetectInputKind(): the kind of `path` from its first bytes (or, for a
// folder, its file names). Never fails: what cannot be opened or read is
// kOther, for the command to report as it always has.
InputKind DetectInputKind(const std::string& path);

// ExpectContainer(): OK unless `path` is a GGUF file, a safetensors file or a
// model folder, which `command` (run, inspect, verify, bench) cannot read;
// then InvalidArgument (exit code 1) saying what it is and to convert it
// first, with the command line to do so.
absl::Status ExpectContainer(const std::string& path, absl::string_view command);

// ExpectCheckpoint(): OK unless `path` is already a zcpack container; then
// InvalidArgument (exit code 1) saying so and what to run on it instead.
absl::Status ExpectCheckpoint(const std::string& path);

// ExpectTokenizerFile(): for tokenize, which reads a container or a GGUF
// file: InvalidArgument for a safetensors file or a model folder, saying how
// to get a container that carries its tokenizer.
absl::Status ExpectTokenizerFile(const std::string& path);

}  // namespace zcpack::cli

#endif  // ZCPACK_TOOLS_CLI_INPUT_KIND_H_

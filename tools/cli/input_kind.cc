#include "tools/cli/input_kind.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <iterator>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "zcpack/converter/gguf.h"
#include "zcpack/format/coding.h"
#include "zcpack/format/format_constants.h"
#include "zcpack/format/posix_file.h"
#include "zcpack/format/utf8.h"

namespace zcpack::cli {
namespace {

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

template <size_t N>
bool StartsWith(const uint8_t* bytes, size_t size, const uint8_t (&magic)[N]) {
  return size >= N && std::equal(std::begin(magic), std::end(magic), bytes);
}

// "what it is", for messages.
std::string Describe(InputKind kind) {
  switch (kind) {
    case InputKind::kContainer: return "a zcpack container";
    case InputKind::kGguf: return "a GGUF file";
    case InputKind::kSafetensors: return "a safetensors file";
    case InputKind::kModelFolder: return "a model folder (Hugging Face layout)";
    case InputKind::kOther: break;
  }
  return "a file";
}

// A container name for `source`: its name with the extension (or, for a
// folder, its own name) followed by .zcpack.
std::string ContainerNameFor(const std::string& source) {
  std::string name = source;
  while (name.size() > 1 && name.back() == '/') name.pop_back();
  const size_t slash = name.rfind('/');
  if (slash != std::string::npos) name = name.substr(slash + 1);
  for (const absl::string_view extension : {".gguf", ".safetensors"}) {
    if (absl::EndsWithIgnoreCase(name, extension)) name.resize(name.size() - extension.size());
  }
  if (name.empty() || name == "." || name == "..") name = "model";
  return absl::StrCat(name, ".zcpack");
}

}  // namespace

InputKind DetectInputKind(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return InputKind::kOther;
  if (S_ISDIR(st.st_mode)) {
    for (const char* name : {"config.json", "model.safetensors", "model.safetensors.index.json"}) {
      if (Exists(absl::StrCat(path, "/", name))) return InputKind::kModelFolder;
    }
    return InputKind::kOther;
  }
  // Only a regular file is opened: open(2) of a FIFO would block.
  if (!S_ISREG(st.st_mode)) return InputKind::kOther;
  format::ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd.valid()) return InputKind::kOther;
  uint8_t head[16] = {};
  const ssize_t n = ::pread(fd.get(), head, sizeof head, 0);
  if (n <= 0) return InputKind::kOther;
  const size_t size = static_cast<size_t>(n);
  if (StartsWith(head, size, format::kMagic)) return InputKind::kContainer;
  if (StartsWith(head, size, converter::kGgufMagic)) return InputKind::kGguf;
  // safetensors: a little-endian u64 header length, then the JSON header.
  if (size >= 9 && head[8] == '{') {
    const uint64_t header_bytes = format::DecodeFixed64(head);
    const uint64_t file_bytes = static_cast<uint64_t>(st.st_size);
    if (header_bytes >= 2 && header_bytes <= file_bytes - 8) return InputKind::kSafetensors;
  }
  return InputKind::kOther;
}

absl::Status ExpectContainer(const std::string& path, absl::string_view command) {
  const InputKind kind = DetectInputKind(path);
  if (kind == InputKind::kContainer || kind == InputKind::kOther) return absl::OkStatus();
  const std::string shown = format::EscapeInvalidUtf8(path);
  return absl::InvalidArgumentError(absl::StrCat(
      shown, " is ", Describe(kind), ", not a zcpack container, which is what ", command,
      " reads: convert it first: zcpack convert ", shown, " -o ", ContainerNameFor(shown)));
}

absl::Status ExpectCheckpoint(const std::string& path) {
  if (DetectInputKind(path) != InputKind::kContainer) return absl::OkStatus();
  const std::string shown = format::EscapeInvalidUtf8(path);
  return absl::InvalidArgumentError(absl::StrCat(
      shown, " is already a zcpack container; there is nothing to convert. Check it with "
      "'zcpack verify ", shown, "', look inside with 'zcpack inspect ", shown,
      "', or generate with 'zcpack run ", shown, " --prompt TEXT'"));
}

absl::Status ExpectTokenizerFile(const std::string& path) {
  const InputKind kind = DetectInputKind(path);
  if (kind != InputKind::kSafetensors && kind != InputKind::kModelFolder) {
    return absl::OkStatus();
  }
  const std::string shown = format::EscapeInvalidUtf8(path);
  return absl::InvalidArgumentError(absl::StrCat(
      shown, " is ", Describe(kind),
      "; tokenize reads a zcpack container or a GGUF file: convert it first (its folder's "
      "tokenizer.json or tokenizer.model is carried): zcpack convert ",
      shown, " -o ", ContainerNameFor(shown)));
}

}  // namespace zcpack::cli

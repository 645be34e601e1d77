// Fuzz target: the GGUF reader must never crash, whatever the bytes. An
// accepted file goes on through the llama metadata mapping and the tokenizer
// blob, and every tensor's extent is touched so a bad bounds check shows
// under ASan. A file that also converts goes through the export path:
// convert (keeping every tensor) -> export to GGUF -> read back, and the
// GGUF -> GGUF layout (`convert --to gguf`) -> read back; what the exporter
// writes must be a GGUF the reader accepts, with every tensor aligned and
// in place (a violation traps, so libFuzzer reports it).
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "zcpack/converter/architecture.h"
#include "zcpack/converter/convert.h"
#include "zcpack/converter/gguf.h"
#include "zcpack/exporter/align_gguf.h"
#include "zcpack/exporter/export.h"
#include "zcpack/format/posix_file.h"

namespace {

using namespace zcpack;

// A folder of this process's own for the files of the export path.
const std::string& WorkDir() {
  static const std::string dir = [] {
    const char* tmp = ::getenv("TMPDIR");
    std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") +
                          "/zcpack-gguf-fuzz-XXXXXX";
    return ::mkdtemp(pattern.data()) != nullptr ? pattern : std::string();
  }();
  return dir;
}

std::vector<uint8_t> ReadAll(const std::string& path) {
  std::vector<uint8_t> bytes;
  auto fd = format::OpenReadOnly(path);
  if (!fd.ok()) return bytes;
  auto size = format::FileSize(fd->get(), path);
  if (!size.ok()) return bytes;
  bytes.resize(*size);
  if (!format::ReadAt(fd->get(), 0, bytes, path).ok()) bytes.clear();
  return bytes;
}

// `path`, written by the exporter, read back: it must parse, with
// `alignment` and every tensor at a multiple of it.
void ReadBack(const std::string& path, uint64_t alignment, size_t tensors) {
  const std::vector<uint8_t> bytes = ReadAll(path);
  auto gguf = converter::ParseGguf(bytes, path);
  if (!gguf.ok() || gguf->alignment != alignment || gguf->tensors.size() != tensors) {
    __builtin_trap();
  }
  for (const converter::GgufTensorInfo& t : gguf->tensors) {
    if (t.offset % alignment != 0) __builtin_trap();
  }
}

void ExportPath(std::span<const uint8_t> bytes) {
  const std::string& dir = WorkDir();
  if (dir.empty()) return;
  const std::string source = dir + "/in.gguf";
  {
    const int fd = ::open(source.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return;
    const bool written = format::WriteAt(fd, 0, bytes, source).ok();
    ::close(fd);
    if (!written) return;
  }
  converter::ConvertOptions convert;
  convert.source = source;
  convert.output = dir + "/c.zcpack";
  convert.keep_source_dtypes = true;
  convert.threads = 1;
  convert.alignment = 4096;
  convert.overwrite = true;
  auto converted = converter::Convert(convert);
  if (converted.ok()) {
    exporter::ExportOptions e;
    e.container = convert.output;
    e.output = dir + "/out.gguf";
    e.alignment = 64;
    e.overwrite = true;
    // A refusal (a tensor llama.cpp has no place for) is an answer; a file
    // written is one the reader must accept.
    auto exported = exporter::ExportToGguf(e);
    if (exported.ok()) ReadBack(e.output, 64, exported->tensors.size());
  }
  exporter::AlignGgufOptions align;
  align.source = source;
  align.output = dir + "/aligned.gguf";
  align.alignment = 128;
  align.overwrite = true;
  auto aligned = exporter::AlignGguf(align);
  if (aligned.ok()) ReadBack(align.output, 128, aligned->tensors.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace zcpack::converter;
  const std::span<const uint8_t> bytes(data, size);
  auto gguf = ParseGguf(bytes, "fuzz.gguf");
  if (!gguf.ok()) return 0;
  volatile uint8_t sink = 0;
  for (const GgufTensorInfo& t : gguf->tensors) {
    (void)PlaceTensor(t.name, TensorNaming::kGguf);
    if (t.nbytes == 0) continue;
    sink = sink ^ bytes[t.offset] ^ bytes[t.offset + t.nbytes - 1];
  }
  auto model = GgufModelInfo(*gguf, "fuzz.gguf");
  if (model.ok()) (void)ExpectedTensors(*model);
  (void)GgufTokenizerBlob(*gguf, "fuzz.gguf", 1);
  if (model.ok()) ExportPath(bytes);
  return 0;
}

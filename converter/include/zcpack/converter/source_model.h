// SourceModel: what the conversion pipeline reads, whatever the input format.
//
// OpenSourceModel() accepts:
//   - a Hugging Face model directory: config.json, and either
//     model.safetensors or model.safetensors.index.json plus its shards;
//     tokenizer.json and tokenizer.model, when present, are carried as
//     zstd-compressed TokenizerBlobs;
//   - a single .safetensors file, with config.json (and any tokenizer files)
//     taken from the file's directory;
//   - a .gguf file (recognised by its magic, not its name).
// Every input file is memory-mapped read-only and checked (safetensors.h,
// gguf.h) before any tensor is exposed; no tensor byte is read or copied.
//
// Tensor names are mapped to (role, layer) with PlaceTensor()
// (architecture.h). OpenSourceModel() does NOT check the tensors against the
// model's hyperparameters: call CheckTensorsAgainstModel() for that.
#ifndef ZCPACK_CONVERTER_SOURCE_MODEL_H_
#define ZCPACK_CONVERTER_SOURCE_MODEL_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "zcpack/converter/gguf.h"
#include "zcpack/converter/safetensors.h"
#include "zcpack/format/manifest.pb.h"
#include "zcpack/format/mapping_guard.h"
#include "zcpack/format/posix_file.h"

namespace zcpack::converter {

// MappedFile: a whole file mapped read-only. Owns the mapping; move-only;
// unmaps in its destructor. Views returned by bytes() must not outlive it
// (moving a MappedFile keeps them valid: the mapping itself does not move).
// Immutable after Open(): const methods may be called from any thread. The
// mapping is registered with format::MappingGuard: if another process
// truncates the file while it is mapped (or the disk fails), reading a
// vanished page gives zeros instead of killing the process with SIGBUS, and
// failed() turns true; readers check it (CheckMapping()) before trusting what
// they read.
class MappedFile {
 public:
  // Open(): maps `path`. An empty file gives an empty mapping. Errors carry
  // the path and errno text (format::ErrnoError); FailedPrecondition for a
  // path that is not a regular file.
  static absl::StatusOr<MappedFile> Open(const std::string& path);

  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }

  // CheckMapping(): OK, or Aborted "<path>: truncated or unreadable while
  // mapped" once a read of the mapping faulted (its bytes from there on read
  // as zeros). Cheap: one atomic load.
  absl::Status CheckMapping() const;

  // Contains(): whether `range` lies inside bytes().
  bool Contains(std::span<const uint8_t> range) const;
  // ReadInto(): the bytes of `range` (inside bytes()) read from the file
  // with pread into out[0, range.size()), not through the mapping: on a
  // virtual machine the first touch of each mapped page can cost more than
  // the copy. Aborted "<path>: truncated or unreadable while mapped" (as
  // CheckMapping()) when the file ends early or the read fails.
  absl::Status ReadInto(std::span<const uint8_t> range, uint8_t* out) const;

 private:
  MappedFile(std::string path, const uint8_t* data, uint64_t size, format::ScopedFd fd);
  void Unmap();

  std::string path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  format::ScopedFd fd_;  // the file, kept open for ReadInto()
  // Declared after the mapping's fields; Unmap() releases it first.
  format::MappingGuard guard_;
};

// One source tensor, its bytes viewed inside a SourceModel's mappings.
struct SourceTensor {
  std::string name;                                  // as in the source file
  format::DType dtype = format::DTYPE_UNSPECIFIED;   // F32, F16, BF16; GGUF: Q4_0, Q8_0, Q4_K
  std::vector<uint64_t> shape;                       // row-major, outermost first
  std::span<const uint8_t> data;                     // little-endian elements
  std::string file;                                  // path of the file holding it
  format::TensorRole role = format::ROLE_OTHER;      // from PlaceTensor()
  int32_t layer = -1;                                // decoder layer, or -1
};

struct SourceModel {
  format::ModelInfo model;
  // Safetensors: shards in name order, each in offset order. GGUF: offset order.
  std::vector<SourceTensor> tensors;
  std::vector<format::TokenizerBlob> tokenizers;
  // Every file read, by base name (so that output does not depend on where
  // the input lives), in the order read. Bytes of a name that are not UTF-8
  // are escaped as \xNN (format::EscapeInvalidUtf8()). A GGUF file written
  // by `zcpack export` whose tensor data is still what the exporter wrote
  // gives the sources it carries instead (gguf.h, kGgufSourceNamesKey).
  std::vector<format::SourceFile> sources;
  // Things the user should know that are not errors, one line each (a GGUF
  // file's carried provenance that was not used, and why).
  std::vector<std::string> notes;
  // Own the bytes that tensors[i].data points into; keep them with the model.
  std::vector<MappedFile> mappings;

  // CheckMappings(): the first mapping's CheckMapping() error, else OK.
  absl::Status CheckMappings() const;
};

struct SourceOptions {
  SafetensorsLimits safetensors;
  GgufLimits gguf;
  // config.json is read whole: bound it.
  uint64_t max_config_bytes = uint64_t{16} << 20;
  // tokenizer.json / tokenizer.model, compressed in memory: bound them.
  uint64_t max_tokenizer_bytes = uint64_t{512} << 20;
  // Level 3: a 128k-token GGUF vocabulary compresses in a tenth of the time
  // of level 12 (convert's open phase fell from 0.57 s to 0.1 s for a llama
  // 3.2 1B shape), for a somewhat larger blob.
  int tokenizer_zstd_level = 3;
};

// OpenSourceModel(): opens and checks the model at `path` (see the file
// comment). On success every tensor has dtype F32, F16 or BF16 (a GGUF
// source also Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 or Q4_K, its blocks as ggml stores
// them) and its
// data span lies inside the returned model's mappings.
// Failure: NotFound for a missing directory entry (config.json, weights, a
// shard named by the index: the message names the shard and a tensor mapped
// to it); DataLoss when the index and the shards disagree; Unimplemented for
// a tensor of another dtype (named; for GGUF one line naming every such
// tensor and its ggml type) or an unsupported architecture; DataLoss
// for a tensor name that is not valid UTF-8 (the container could not store
// it; the message escapes the bad bytes as \xNN); the
// reader's codes (safetensors.h, gguf.h) otherwise.
absl::StatusOr<std::unique_ptr<SourceModel>> OpenSourceModel(const std::string& path,
                                                             const SourceOptions& options = {});

// OpenTokenizerSource(): the tokenizer of the file at `path`, to carry with
// a model whose source has none (`zcpack convert --tokenizer`): a GGUF file
// (recognised by its magic; a vocabulary-only one will do) gives its
// tokenizer.* metadata as a "gguf-metadata" blob; a file named
// tokenizer.json or tokenizer.model is carried as it is. The result holds
// only `tokenizers` (one blob) and `sources` (the file). InvalidArgument,
// naming the file, for anything else or a GGUF without tokenizer.* keys;
// ResourceExhausted for a tokenizer.json / tokenizer.model over
// max_tokenizer_bytes; the GGUF reader's codes.
absl::StatusOr<std::unique_ptr<SourceModel>> OpenTokenizerSource(
    const std::string& path, const SourceOptions& options = {});

// MakeTokenizerBlob(): compresses `raw` with zstd at `zstd_level` into a blob.
// Internal if compression fails.
absl::StatusOr<format::TokenizerBlob> MakeTokenizerBlob(absl::string_view kind,
                                                        absl::string_view file_name,
                                                        std::span<const uint8_t> raw,
                                                        int zstd_level);

// TextProducer: writes a text by calling `emit` with its pieces in order.
using TextProducer =
    absl::FunctionRef<void(absl::FunctionRef<void(absl::string_view piece)> emit)>;

// MakeStreamedTokenizerBlob(): MakeTokenizerBlob() for a text that is never
// held whole (GGUF tokenizer metadata rendered as JSON). `produce` is called
// twice, first to measure the text and then to compress it piece by piece,
// and must write the same text both times. Memory: the compressed blob and a
// buffer of 128 KiB. Internal if compression fails.
absl::StatusOr<format::TokenizerBlob> MakeStreamedTokenizerBlob(absl::string_view kind,
                                                                absl::string_view file_name,
                                                                TextProducer produce,
                                                                int zstd_level);

}  // namespace zcpack::converter

#endif  // ZCPACK_CONVERTER_SOURCE_MODEL_H_

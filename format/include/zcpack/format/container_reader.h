// Container: a read-only, memory-mapped zcpack container (format v1).
//
// Open() reads the header and the manifest with positioned reads and maps the
// file without touching any tensor page: its cost is O(number of tensors),
// independent of the data size. It checks, in this fixed order: size, magic,
// version, header checksum, header fields and limits, manifest bounds and
// checksum, manifest decoding, then every tensor (name, dtype, rank, size for
// dtype and shape, alignment, bounds, order, no overlap, layer contiguity):
// the rules of structural_rules.h, stopping at the first problem.
// Status codes (format/SPEC.md, "Errors"):
//   InvalidArgument   not a zcpack container (bad magic)
//   Unimplemented     newer major version, or an unknown required feature
//   DataLoss          truncated, checksum mismatch, or any structural defect
//   ResourceExhausted a reader limit (ReaderLimits) is exceeded
//   other codes       OS errors, carrying the path and errno text
// Every message names the file (and the tensor, where there is one).
//
// After a successful Open() the manifest is trusted: accessors do not re-check.
// Tensor data is NOT checksummed at open unless ReaderOptions asks for it.
//
// Thread-safety: a Container is immutable after Open(); all const methods may
// be called from any thread. Lifetime: spans returned by TensorData() point
// into the mapping and must not outlive the Container. If the file is
// truncated by another process while mapped, touching a vanished page raises
// SIGBUS; containers are meant to be immutable once written.
#ifndef ZCPACK_FORMAT_CONTAINER_READER_H_
#define ZCPACK_FORMAT_CONTAINER_READER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "zcpack/format/header.h"
#include "zcpack/format/manifest.pb.h"

namespace zcpack::format {

// Limits a reader enforces on untrusted input; exceeding one gives
// ResourceExhausted. The defaults admit any real model.
struct ReaderLimits {
  uint64_t max_tensors = 1 << 20;
  uint32_t max_rank = 8;
  uint64_t max_name_bytes = 4096;
  uint64_t max_manifest_bytes = uint64_t{256} << 20;      // as stored
  uint64_t max_manifest_raw_bytes = uint64_t{1} << 30;    // decoded
};

struct ReaderOptions {
  ReaderLimits limits;
  // Verify every tensor's XXH3-64 during Open() (reads all data).
  bool verify_checksums = false;
  // Threads for checksum passes; 0 means one per hardware thread.
  int checksum_threads = 0;
};

// A contiguous, aligned byte range of the file.
struct ByteRange {
  uint64_t offset = 0;
  uint64_t size = 0;
};

class Container {
 public:
  // Open(): opens, checks and maps the file at `path`.
  static absl::StatusOr<std::unique_ptr<Container>> Open(const std::string& path,
                                                         const ReaderOptions& options = {});

  // OpenBuffer(): the same checks over bytes already in memory. The container
  // does not own `bytes`, which must outlive it. `name` is used in messages.
  static absl::StatusOr<std::unique_ptr<Container>> OpenBuffer(std::span<const uint8_t> bytes,
                                                               std::string name,
                                                               const ReaderOptions& options = {});

  Container(const Container&) = delete;
  Container& operator=(const Container&) = delete;
  ~Container();  // unmaps and closes

  const std::string& path() const;
  const ContainerHeader& header() const;
  uint64_t alignment() const;
  uint64_t file_size() const;
  const Manifest& manifest() const;

  size_t num_tensors() const;
  const TensorEntry& tensor(size_t index) const;
  // FindTensor(): index of the tensor with this name; nullopt if absent. O(1).
  std::optional<size_t> FindTensor(absl::string_view name) const;

  // TensorData(): the tensor's nbytes bytes, zero-copy, inside the mapping.
  std::span<const uint8_t> TensorData(size_t index) const;
  // TensorExtent(): the tensor's aligned file range (data plus padding).
  ByteRange TensorExtent(size_t index) const;
  // The whole file as mapped.
  std::span<const uint8_t> file_bytes() const;
  // The data region (header page and manifest excluded).
  ByteRange data_range() const;

  // LayerRange(): the aligned file range covering all tensors of decoder
  // layer `layer` (one contiguous range by construction); nullopt if the layer
  // has no tensors.
  std::optional<ByteRange> LayerRange(int layer) const;
  // Number of decoder layers that have tensors (highest layer index + 1).
  int num_layers() const;

  // TokenizerData(): tokenizer blob `index` of manifest().tokenizers(),
  // decoded: its zstd frame read in place from the mapping (or from the
  // manifest, for an inline blob), the stored bytes' XXH3-64 checked, and
  // decompressed to exactly raw_size bytes. Open() never does this: a
  // vocabulary costs nothing until it is used. DataLoss naming the file and
  // the blob for a checksum mismatch, a bad frame, or a frame that does not
  // decode to raw_size; OutOfRange when raw_size exceeds max_raw_bytes;
  // Aborted when the file was truncated while mapped.
  absl::StatusOr<std::string> TokenizerData(size_t index,
                                            uint64_t max_raw_bytes = uint64_t{1} << 30) const;

  // A file descriptor open on the file, or -1 for OpenBuffer() containers.
  // Owned by the container; for fadvise/readahead hints only.
  int file_descriptor() const;

  // ComputeChecksums(): XXH3-64 of every tensor's data, in parallel.
  std::vector<uint64_t> ComputeChecksums(int threads = 0) const;
  // VerifyChecksums(): DataLoss naming the first (lowest-offset) tensor whose
  // data does not match its recorded checksum.
  absl::Status VerifyChecksums(int threads = 0) const;

 private:
  struct Impl;
  explicit Container(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace zcpack::format

#endif  // ZCPACK_FORMAT_CONTAINER_READER_H_

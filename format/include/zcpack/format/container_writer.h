// ContainerWriter: writes a zcpack container (format v1) atomically.
//
// The writer works in three phases:
//   1. Create() with the complete list of tensors (names, dtypes, shapes) in
//      file order. The layout is planned at once: every tensor's offset is
//      known before any byte is written, so
//   2. any thread may write any tensor, at any time, in any order, through
//      WriteTensor() or a TensorSink (for tensors streamed in pieces), and
//   3. Finish() writes the manifest and the header, fsyncs, and renames the
//      temporary file onto the destination path.
// Output goes to a temporary file in the destination's folder (TempFile,
// temp_file.h: a name unique to the writer that fits any legal destination
// name, locked while the writer lives). If the writer is destroyed before
// Finish() succeeds, or any step fails, the temporary file is removed and the
// destination is left untouched.
//
// Determinism: the bytes depend only on the tensors' contents, the manifest
// fields supplied and the options, never on thread scheduling or time.
#ifndef ZCPACK_FORMAT_CONTAINER_WRITER_H_
#define ZCPACK_FORMAT_CONTAINER_WRITER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "zcpack/format/format_constants.h"
#include "zcpack/format/manifest.pb.h"

namespace zcpack::format {

struct WriterOptions {
  // Tensor alignment in bytes: a power of two in [4 KiB, 2 MiB].
  uint64_t alignment = kDefaultAlignment;
  // zstd-compress the manifest (sets the kFeatureZstdManifest required bit).
  bool compress_manifest = true;
  int zstd_level = 9;
  // Replace an existing destination file. Without it Create() fails with
  // AlreadyExists when the destination exists.
  bool overwrite = false;
  // Extend the temporary file to its final size up front (posix_fallocate),
  // so that a full disk fails before data is written. Ignored where the file
  // system does not support it.
  bool preallocate = true;
};

// One tensor as planned by the caller. The writer fills offset, nbytes and,
// once data arrives, xxh3.
struct TensorPlan {
  std::string name;
  TensorRole role = ROLE_UNSPECIFIED;
  int32_t layer = -1;
  DType dtype = DTYPE_UNSPECIFIED;
  std::vector<uint64_t> shape;
  DType source_dtype = DTYPE_UNSPECIFIED;
  // The block order of the bytes the caller will write (row_groups.h). The
  // writer does not rearrange anything: the caller writes the bytes in this
  // order, and the writer records it and sets kFeatureRowGroups in the
  // header when any tensor uses LAYOUT_ROW_GROUPS_16.
  TensorLayout layout = LAYOUT_ROW_MAJOR;
};

// CheckAlignment(): InvalidArgument unless `alignment` is a power of two in
// [4 KiB, 2 MiB] (WriterOptions::alignment). Lets a caller refuse a bad
// option before it reads any input.
absl::Status CheckAlignment(uint64_t alignment);

class ContainerWriter;

// TensorSink: receives one tensor's bytes in order, in pieces of any size.
// Not thread-safe by itself; different sinks may be used on different threads
// at the same time. Commit() must be called after the last byte; a sink
// destroyed without Commit() leaves its tensor unwritten (Finish() then fails).
class TensorSink {
 public:
  TensorSink(TensorSink&&) noexcept;
  TensorSink& operator=(TensorSink&&) = delete;
  ~TensorSink();

  // Append(): writes the next bytes of the tensor at their planned place.
  // InvalidArgument if more than the tensor's nbytes would be written;
  // an I/O error (with the path and errno) if the write fails.
  absl::Status Append(std::span<const uint8_t> bytes);

  // Commit(): records the checksum and, when given, the quantization
  // statistics (absent for tensors stored exactly as in the source).
  // InvalidArgument if fewer than nbytes were appended.
  absl::Status Commit(const std::optional<QuantStats>& stats = std::nullopt);

 private:
  friend class ContainerWriter;
  struct State;
  explicit TensorSink(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

class ContainerWriter {
 public:
  // Create(): validates the plan (unique non-empty UTF-8 names, known dtypes,
  // shapes whose size is valid for the dtype, layouts the dtype and shape
  // allow (TensorLayoutProblem()), alignment a power of two in range),
  // assigns offsets in the given order, and opens a temporary file beside
  // `path`. Errors: InvalidArgument for a bad plan or options; AlreadyExists
  // when `path` exists and !options.overwrite; an I/O status (with the path
  // and errno) when the temporary file cannot be created.
  static absl::StatusOr<std::unique_ptr<ContainerWriter>> Create(
      const std::string& path, std::vector<TensorPlan> tensors, const WriterOptions& options);

  ContainerWriter(const ContainerWriter&) = delete;
  ContainerWriter& operator=(const ContainerWriter&) = delete;
  // Removes the temporary file unless Finish() succeeded.
  ~ContainerWriter();

  // The planned entry of tensor `index` (offset and nbytes filled in).
  const TensorEntry& planned(size_t index) const;
  size_t num_tensors() const;
  // Size of the file once finished, manifest excluded.
  uint64_t data_end() const;

  // WriteTensor(): writes the whole tensor at once. Thread-safe across
  // different indices. InvalidArgument for a wrong size, an out-of-range index
  // or a tensor written twice.
  absl::Status WriteTensor(size_t index, std::span<const uint8_t> bytes,
                           const std::optional<QuantStats>& stats = std::nullopt);

  // BeginTensor(): a sink for writing tensor `index` in pieces. Thread-safe
  // across different indices. InvalidArgument for an out-of-range index or a
  // tensor already begun.
  absl::StatusOr<TensorSink> BeginTensor(size_t index);

  // Finish(): every tensor must have been committed (FailedPrecondition
  // otherwise). `manifest` supplies the model info, tokenizers and provenance;
  // its tensor list is ignored and replaced by the writer's. Writes the
  // manifest after the data and the header at offset 0, fsyncs the file and
  // renames it onto the destination, then fsyncs the folder.
  absl::Status Finish(const Manifest& manifest);

  const std::string& path() const;
  // The stale temporary files of earlier writers that Create() removed from
  // the destination's folder (TempFile::removed_stale()).
  const std::vector<std::string>& removed_stale_temp_files() const;

  struct Impl;  // opaque; public only so that TensorSink can refer to it

 private:
  explicit ContainerWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// SerializeManifest(): the deterministic byte encoding of a manifest, as the
// writer stores it (zstd-compressed when `compress`). Exposed for tools and
// tests that build containers by hand.
absl::StatusOr<std::string> SerializeManifest(const Manifest& manifest, bool compress,
                                              int zstd_level = 9);

}  // namespace zcpack::format

#endif  // ZCPACK_FORMAT_CONTAINER_WRITER_H_

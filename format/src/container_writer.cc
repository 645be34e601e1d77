#include "zcpack/format/container_writer.h"

#include <fcntl.h>
#include <libgen.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "tensor_table.h"
#include "xxhash.h"
// Debian's libxxhash on x86-64 also carries XXH3 kernels for AVX2 and AVX-512,
// chosen at run time: the same digests at about twice the SSE2 speed. The
// header maps XXH3_64bits() and XXH3_64bits_update() to them.
#if defined(__x86_64__) && __has_include("xxh_x86dispatch.h")
#include "xxh_x86dispatch.h"
#endif
#include "zcpack/format/coding.h"
#include "zcpack/format/dtype.h"
#include "zcpack/format/header.h"
#include "zcpack/format/posix_file.h"
#include "zcpack/format/temp_file.h"
#include "zcpack/format/utf8.h"
#include "zcpack/status_macros.h"
#include "zstd.h"

namespace zcpack::format {
namespace {

enum TensorState : uint8_t { kNotStarted = 0, kBegun = 1, kCommitted = 2 };

}  // namespace

absl::StatusOr<std::string> SerializeManifest(const Manifest& manifest, bool compress,
                                              int zstd_level) {
  std::string raw;
  {
    google::protobuf::io::StringOutputStream stream(&raw);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    if (!manifest.SerializeToCodedStream(&coded)) {
      return absl::InternalError("manifest failed to serialize");
    }
  }
  if (!compress) return raw;
  std::string out(ZSTD_compressBound(raw.size()), '\0');
  const size_t n = ZSTD_compress(out.data(), out.size(), raw.data(), raw.size(), zstd_level);
  if (ZSTD_isError(n)) {
    return absl::InternalError(absl::StrCat("zstd: ", ZSTD_getErrorName(n)));
  }
  out.resize(n);
  return out;
}

struct ContainerWriter::Impl {
  std::string path;
  std::string temp_path;
  WriterOptions options;
  uint32_t alignment_log2 = 0;
  // The file being written; removed on destruction unless installed.
  std::optional<TempFile> temp;
  int fd = -1;  // temp->fd(), for the sinks
  std::vector<std::string> removed_stale;  // temp->removed_stale(), kept past Finish()
  std::vector<TensorEntry> entries;
  std::unique_ptr<std::atomic<uint8_t>[]> states;
  uint64_t data_offset = 0;
  uint64_t data_end = 0;
  // Header bits that follow from the tensors (kFeatureRowGroups).
  uint64_t tensor_features = 0;
  bool finished = false;


  absl::Status CheckIndex(size_t index) const {
    if (index >= entries.size()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": tensor index ", index,
                                                     " out of range (", entries.size(),
                                                     " tensors)"));
    }
    return absl::OkStatus();
  }
};

struct TensorSink::State {
  ContainerWriter::Impl* writer = nullptr;
  size_t index = 0;
  uint64_t written = 0;
  bool committed = false;
  XXH3_state_t* hash = nullptr;

  ~State() {
    if (hash != nullptr) XXH3_freeState(hash);
    if (writer != nullptr && !committed) writer->states[index].store(kNotStarted);
  }
};

TensorSink::TensorSink(std::unique_ptr<State> state) : state_(std::move(state)) {}
TensorSink::TensorSink(TensorSink&&) noexcept = default;
TensorSink::~TensorSink() = default;

absl::Status TensorSink::Append(std::span<const uint8_t> bytes) {
  State& s = *state_;
  TensorEntry& entry = s.writer->entries[s.index];
  if (s.committed) {
    return absl::FailedPreconditionError(
        absl::StrCat(s.writer->path, ": tensor '", entry.name(), "' already committed"));
  }
  if (bytes.size() > entry.nbytes() - s.written) {
    return absl::InvalidArgumentError(absl::StrCat(s.writer->path, ": tensor '", entry.name(),
                                                   "' receives more than its ", entry.nbytes(),
                                                   " bytes"));
  }
  // One write for the whole piece: writing it in cache-sized parts (to hash
  // each while hot) left the page cache in smaller folios, so that a
  // mapping of the fresh file faulted in fewer pages around each access and
  // `zcpack plan`'s peaks no longer matched (cli_plan_test).
  const uint64_t begin = entry.offset() + s.written;
  ZCPACK_RETURN_IF_ERROR(WriteAt(s.writer->fd, begin, bytes, s.writer->temp_path));
#if defined(__linux__)
  // Start writing these pages back now rather than all at Finish()'s fsync:
  // the disk writes while later tensors are read and converted, and dirty
  // pages do not pile up in memory. Only a hint: errors surface at fsync.
  (void)::sync_file_range(s.writer->fd, static_cast<off_t>(begin),
                          static_cast<off_t>(bytes.size()), SYNC_FILE_RANGE_WRITE);
#endif
  XXH3_64bits_update(s.hash, bytes.data(), bytes.size());
  s.written += bytes.size();
  return absl::OkStatus();
}

absl::Status TensorSink::Commit(const std::optional<QuantStats>& stats) {
  State& s = *state_;
  TensorEntry& entry = s.writer->entries[s.index];
  if (s.written != entry.nbytes()) {
    return absl::InvalidArgumentError(absl::StrCat(s.writer->path, ": tensor '", entry.name(),
                                                   "' got ", s.written, " of its ", entry.nbytes(),
                                                   " bytes"));
  }
  entry.set_xxh3(XXH3_64bits_digest(s.hash));
  if (stats.has_value()) {
    *entry.mutable_quant_stats() = *stats;
  } else {
    entry.clear_quant_stats();
  }
  s.committed = true;
  s.writer->states[s.index].store(kCommitted, std::memory_order_release);
  return absl::OkStatus();
}

absl::Status CheckAlignment(uint64_t alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0 ||
      alignment < (uint64_t{1} << kMinAlignmentLog2) ||
      alignment > (uint64_t{1} << kMaxAlignmentLog2)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "alignment ", alignment, " is not a power of two between 4096 and 2097152"));
  }
  return absl::OkStatus();
}

ContainerWriter::ContainerWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ContainerWriter::~ContainerWriter() = default;

absl::StatusOr<std::unique_ptr<ContainerWriter>> ContainerWriter::Create(
    const std::string& path, std::vector<TensorPlan> tensors, const WriterOptions& options) {
  ZCPACK_RETURN_IF_ERROR(CheckAlignment(options.alignment));
  const uint64_t alignment = options.alignment;
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->options = options;
  impl->alignment_log2 = static_cast<uint32_t>(std::countr_zero(alignment));
  impl->data_offset = alignment;  // the header owns the first aligned unit

  // Plan the layout: offsets follow the caller's order.
  uint64_t cursor = impl->data_offset;
  impl->entries.reserve(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    TensorPlan& plan = tensors[i];
    if (!IsValidUtf8(plan.name)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": tensor '",
                                                     EscapeInvalidUtf8(plan.name),
                                                     "': name is not valid UTF-8"));
    }
    TensorEntry entry;
    entry.set_name(std::move(plan.name));
    entry.set_role(plan.role);
    entry.set_layer(plan.layer);
    entry.set_dtype(plan.dtype);
    for (uint64_t d : plan.shape) entry.add_shape(d);
    entry.set_source_dtype(plan.source_dtype);
    entry.set_layout(plan.layout);
    if (plan.layout != LAYOUT_ROW_MAJOR) impl->tensor_features |= kFeatureRowGroups;
    auto nbytes = TensorByteSize(plan.dtype, plan.shape);
    if (!nbytes.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": tensor '", entry.name(),
                                                     "': ", nbytes.status().message()));
    }
    entry.set_nbytes(*nbytes);
    entry.set_offset(cursor);
    if (*nbytes > (uint64_t{1} << 62) - cursor) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": layout exceeds 2^62 bytes"));
    }
    cursor = internal::AlignUp(cursor + *nbytes, alignment);
    impl->entries.push_back(std::move(entry));
  }
  impl->data_end = cursor;

  // The reader's rules, applied to the plan, so the writer cannot produce a
  // file the reader rejects.
  google::protobuf::RepeatedPtrField<TensorEntry> table(impl->entries.begin(),
                                                        impl->entries.end());
  std::vector<ByteRange> layers;
  ReaderLimits limits;
  limits.max_tensors = std::max<uint64_t>(limits.max_tensors, impl->entries.size());
  const internal::DataLayout layout{alignment, impl->data_offset, cursor - impl->data_offset,
                                    impl->tensor_features};
  if (absl::Status s = internal::ValidateTensorTable(table, layout, limits, path, &layers); !s.ok()) {
    return absl::InvalidArgumentError(s.message());
  }
  impl->states = std::make_unique<std::atomic<uint8_t>[]>(impl->entries.size());

  struct stat st;
  if (!options.overwrite && ::lstat(path.c_str(), &st) == 0) {
    return absl::AlreadyExistsError(
        absl::StrCat(path, ": already exists (pass --force to overwrite)"));
  }
  ZCPACK_ASSIGN_OR_RETURN(TempFile temp, TempFile::Create(path));
  const int fd = temp.fd();
  impl->fd = fd;
  impl->temp_path = temp.path();
  impl->removed_stale = temp.removed_stale();
  impl->temp.emplace(std::move(temp));
  if (options.preallocate && impl->data_end > 0) {
    const int rc = ::posix_fallocate(fd, 0, static_cast<off_t>(impl->data_end));
    if (rc != 0 && rc != EOPNOTSUPP && rc != EINVAL) {
      return ErrnoError(rc, path, absl::StrCat("cannot reserve ", impl->data_end, " bytes"));
    }
  }
  return std::unique_ptr<ContainerWriter>(new ContainerWriter(std::move(impl)));
}

const TensorEntry& ContainerWriter::planned(size_t index) const { return impl_->entries[index]; }
size_t ContainerWriter::num_tensors() const { return impl_->entries.size(); }
uint64_t ContainerWriter::data_end() const { return impl_->data_end; }
const std::string& ContainerWriter::path() const { return impl_->path; }
const std::vector<std::string>& ContainerWriter::removed_stale_temp_files() const {
  return impl_->removed_stale;
}

absl::StatusOr<TensorSink> ContainerWriter::BeginTensor(size_t index) {
  ZCPACK_RETURN_IF_ERROR(impl_->CheckIndex(index));
  uint8_t expected = kNotStarted;
  if (!impl_->states[index].compare_exchange_strong(expected, kBegun)) {
    return absl::InvalidArgumentError(absl::StrCat(impl_->path, ": tensor '",
                                                   impl_->entries[index].name(),
                                                   "' written twice"));
  }
  auto state = std::make_unique<TensorSink::State>();
  state->writer = impl_.get();
  state->index = index;
  state->hash = XXH3_createState();
  if (state->hash == nullptr) return absl::ResourceExhaustedError("XXH3_createState failed");
  XXH3_64bits_reset(state->hash);
  return TensorSink(std::move(state));
}

absl::Status ContainerWriter::WriteTensor(size_t index, std::span<const uint8_t> bytes,
                                          const std::optional<QuantStats>& stats) {
  ZCPACK_RETURN_IF_ERROR(impl_->CheckIndex(index));
  if (bytes.size() != impl_->entries[index].nbytes()) {
    return absl::InvalidArgumentError(absl::StrCat(impl_->path, ": tensor '",
                                                   impl_->entries[index].name(), "' is ",
                                                   impl_->entries[index].nbytes(),
                                                   " bytes, got ", bytes.size()));
  }
  ZCPACK_ASSIGN_OR_RETURN(TensorSink sink, BeginTensor(index));
  ZCPACK_RETURN_IF_ERROR(sink.Append(bytes));
  return sink.Commit(stats);
}

absl::Status ContainerWriter::Finish(const Manifest& manifest_in) {
  Impl& w = *impl_;
  if (w.finished) return absl::FailedPreconditionError(absl::StrCat(w.path, ": already finished"));
  for (size_t i = 0; i < w.entries.size(); ++i) {
    if (w.states[i].load(std::memory_order_acquire) != kCommitted) {
      return absl::FailedPreconditionError(absl::StrCat(w.path, ": tensor '", w.entries[i].name(),
                                                        "' was never written"));
    }
  }
  Manifest manifest = manifest_in;
  manifest.clear_tensors();
  for (const TensorEntry& e : w.entries) *manifest.add_tensors() = e;
  // Tokenizer blobs go between the data region and the manifest, each at an
  // aligned offset, so that Open() never copies or decodes them.
  uint64_t cursor = w.data_end;
  for (TokenizerBlob& blob : *manifest.mutable_tokenizers()) {
    if (blob.zstd_data().empty()) {
      blob.clear_offset();
      blob.clear_stored_size();
      blob.clear_xxh3();
      continue;
    }
    const std::string& bytes = blob.zstd_data();
    cursor = internal::AlignUp(cursor, uint64_t{1} << w.alignment_log2);
    ZCPACK_RETURN_IF_ERROR(WriteAt(
        w.fd, cursor,
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()),
        w.temp_path));
    blob.set_offset(cursor);
    blob.set_stored_size(bytes.size());
    blob.set_xxh3(XXH3_64bits(bytes.data(), bytes.size()));
    cursor += bytes.size();
    blob.clear_zstd_data();
  }
  ZCPACK_ASSIGN_OR_RETURN(const std::string raw, SerializeManifest(manifest, false));
  std::string stored = raw;
  if (w.options.compress_manifest) {
    ZCPACK_ASSIGN_OR_RETURN(stored, SerializeManifest(manifest, true, w.options.zstd_level));
  }

  ContainerHeader h = NewHeader();
  h.required_features =
      (w.options.compress_manifest ? kFeatureZstdManifest : 0) | w.tensor_features;
  h.alignment_log2 = w.alignment_log2;
  h.data_offset = w.data_offset;
  h.data_size = w.data_end - w.data_offset;
  h.manifest_offset = cursor;
  h.manifest_size = stored.size();
  h.manifest_raw_size = raw.size();
  h.manifest_xxh3 = XXH3_64bits(stored.data(), stored.size());
  h.file_size = h.manifest_offset + h.manifest_size;
  std::array<uint8_t, kHeaderSize> header_bytes{};
  EncodeHeader(h, header_bytes);

  const int fd = w.fd;
  ZCPACK_RETURN_IF_ERROR(WriteAt(
      fd, h.manifest_offset,
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(stored.data()), stored.size()),
      w.temp_path));
  ZCPACK_RETURN_IF_ERROR(WriteAt(fd, 0, header_bytes, w.temp_path));
  if (::ftruncate(fd, static_cast<off_t>(h.file_size)) != 0) {
    return ErrnoError(errno, w.temp_path, "ftruncate");
  }
  ZCPACK_RETURN_IF_ERROR(w.temp->Install(w.options.overwrite));
  w.fd = -1;
  w.finished = true;
  return absl::OkStatus();
}

}  // namespace zcpack::format

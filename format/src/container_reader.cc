#include "zcpack/format/container_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <optional>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "tensor_table.h"
#include "xxhash.h"
// Debian's libxxhash on x86-64 also carries XXH3 kernels for AVX2 and AVX-512,
// chosen at run time: the same digests at about twice the SSE2 speed. The
// header maps XXH3_64bits() and XXH3_64bits_update() to them.
#if defined(__x86_64__) && __has_include("xxh_x86dispatch.h")
#include "xxh_x86dispatch.h"
#endif
#include "zcpack/format/coding.h"
#include "zcpack/format/mapping_guard.h"
#include "zcpack/format/posix_file.h"
#include "zcpack/format/status_context.h"
#include "zcpack/format/structural_rules.h"
#include "zcpack/format/threads.h"
#include "zcpack/format/utf8.h"
#include "zcpack/status_macros.h"
#include "zstd.h"

namespace zcpack::format {
namespace {

// Reads `dst.size()` bytes at an offset already checked to be in bounds.
using ReadFn = ReadAtFn;

struct Parsed {
  ContainerHeader header;
  Manifest manifest;
  std::vector<ByteRange> layer_ranges;
};

absl::StatusOr<Parsed> Parse(const ReadFn& read, uint64_t file_size, const ReaderLimits& limits,
                             absl::string_view file) {
  // The rules `zcpack verify` lists, applied here up to the first problem.
  FirstProblem first;
  ZCPACK_ASSIGN_OR_RETURN(CheckedContainer checked, CheckContainer(read, file_size, limits, first));
  if (first.found()) return first.Status(file);
  Parsed parsed;
  parsed.header = checked.header;
  parsed.manifest = std::move(checked.manifest);
  parsed.layer_ranges = std::move(checked.layer_ranges);
  return parsed;
}

}  // namespace

struct Container::Impl {
  std::string path;
  ScopedFd fd;
  const uint8_t* base = nullptr;
  uint64_t size = 0;
  bool owns_mapping = false;
  Parsed parsed;
  absl::flat_hash_map<absl::string_view, size_t> by_name;

  ~Impl() {
    if (owns_mapping && base != nullptr) {
      ::munmap(const_cast<uint8_t*>(base), size);
    }
  }
};

Container::Container(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Container::~Container() = default;

namespace {

absl::StatusOr<std::unique_ptr<Container>> Finalize(std::unique_ptr<Container> container,
                                                    const ReaderOptions& options) {
  if (options.verify_checksums) {
    ZCPACK_RETURN_IF_ERROR(container->VerifyChecksums(options.checksum_threads));
  }
  return container;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Container>> Container::Open(const std::string& path,
                                                           const ReaderOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  ZCPACK_ASSIGN_OR_RETURN(impl->fd, OpenReadOnly(path));
  ZCPACK_ASSIGN_OR_RETURN(impl->size, FileSize(impl->fd.get(), path));
  const int fd = impl->fd.get();
  // Read only what is asked for: without this, the kernel's readahead around
  // the header would pull tensor pages into the page cache at open.
  (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
  const ReadFn read = [fd, &path](uint64_t offset, std::span<uint8_t> dst) {
    return ReadAt(fd, offset, dst, path);
  };
  auto parsed = Parse(read, impl->size, options.limits, path);
  (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_NORMAL);
  if (!parsed.ok()) return WithFile(parsed.status(), path);
  impl->parsed = *std::move(parsed);
  void* base = ::mmap(nullptr, impl->size, PROT_READ, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) return ErrnoError(errno, path, "mmap");
  impl->base = static_cast<const uint8_t*>(base);
  impl->owns_mapping = true;
  for (size_t i = 0; i < static_cast<size_t>(impl->parsed.manifest.tensors_size()); ++i) {
    impl->by_name.emplace(impl->parsed.manifest.tensors(static_cast<int>(i)).name(), i);
  }
  absl::StatusOr<std::unique_ptr<Container>> container =
      Finalize(std::unique_ptr<Container>(new Container(std::move(impl))), options);
  if (!container.ok()) return WithFile(container.status(), path);
  return container;
}

absl::StatusOr<std::unique_ptr<Container>> Container::OpenBuffer(std::span<const uint8_t> bytes,
                                                                 std::string name,
                                                                 const ReaderOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->path = std::move(name);
  impl->base = bytes.data();
  impl->size = bytes.size();
  const ReadFn read = [bytes](uint64_t offset, std::span<uint8_t> dst) {
    if (!ByteRangeInBounds(offset, dst.size(), bytes.size())) {
      return absl::DataLossError("read past the end of the buffer");
    }
    if (!dst.empty()) std::memcpy(dst.data(), bytes.data() + offset, dst.size());
    return absl::OkStatus();
  };
  ZCPACK_ASSIGN_OR_RETURN(impl->parsed, Parse(read, bytes.size(), options.limits, impl->path));
  for (size_t i = 0; i < static_cast<size_t>(impl->parsed.manifest.tensors_size()); ++i) {
    impl->by_name.emplace(impl->parsed.manifest.tensors(static_cast<int>(i)).name(), i);
  }
  return Finalize(std::unique_ptr<Container>(new Container(std::move(impl))), options);
}

const std::string& Container::path() const { return impl_->path; }
const ContainerHeader& Container::header() const { return impl_->parsed.header; }
uint64_t Container::alignment() const { return impl_->parsed.header.alignment(); }
uint64_t Container::file_size() const { return impl_->size; }
const Manifest& Container::manifest() const { return impl_->parsed.manifest; }
size_t Container::num_tensors() const {
  return static_cast<size_t>(impl_->parsed.manifest.tensors_size());
}
const TensorEntry& Container::tensor(size_t index) const {
  return impl_->parsed.manifest.tensors(static_cast<int>(index));
}

std::optional<size_t> Container::FindTensor(absl::string_view name) const {
  auto it = impl_->by_name.find(name);
  if (it == impl_->by_name.end()) return std::nullopt;
  return it->second;
}

std::span<const uint8_t> Container::TensorData(size_t index) const {
  const TensorEntry& t = tensor(index);
  return {impl_->base + t.offset(), static_cast<size_t>(t.nbytes())};
}

ByteRange Container::TensorExtent(size_t index) const {
  const TensorEntry& t = tensor(index);
  return {t.offset(), internal::AlignUp(t.nbytes(), alignment())};
}

std::span<const uint8_t> Container::file_bytes() const {
  return {impl_->base, static_cast<size_t>(impl_->size)};
}

ByteRange Container::data_range() const {
  return {impl_->parsed.header.data_offset, impl_->parsed.header.data_size};
}

std::optional<ByteRange> Container::LayerRange(int layer) const {
  const auto& ranges = impl_->parsed.layer_ranges;
  if (layer < 0 || static_cast<size_t>(layer) >= ranges.size() || ranges[layer].size == 0) {
    return std::nullopt;
  }
  return ranges[layer];
}

int Container::num_layers() const { return static_cast<int>(impl_->parsed.layer_ranges.size()); }

int Container::file_descriptor() const { return impl_->fd.get(); }

absl::StatusOr<std::string> Container::TokenizerData(size_t index, uint64_t max_raw_bytes) const {
  const TokenizerBlob& blob = manifest().tokenizers(static_cast<int>(index));
  const std::string what = absl::StrCat(EscapeInvalidUtf8(impl_->path), ": tokenizer blob ", index,
                                        " (", EscapeInvalidUtf8(blob.kind()), ")");
  if (blob.raw_size() > max_raw_bytes) {
    return absl::OutOfRangeError(absl::StrCat(what, " decodes to ", blob.raw_size(),
                                              " bytes, more than the limit of ", max_raw_bytes));
  }
  std::string raw(static_cast<size_t>(blob.raw_size()), '\0');
  // Reading the mapping: a file truncated meanwhile reads as zeros under the
  // guard instead of killing the process.
  std::optional<MappingGuard> guard;
  if (impl_->owns_mapping) guard.emplace(impl_->base, static_cast<size_t>(impl_->size));
  std::span<const uint8_t> stored(reinterpret_cast<const uint8_t*>(blob.zstd_data().data()),
                                  blob.zstd_data().size());
  if (blob.stored_size() != 0) {
    // Open() checked the range ("tokenizer_bounds").
    stored = {impl_->base + blob.offset(), static_cast<size_t>(blob.stored_size())};
    const uint64_t sum = XXH3_64bits(stored.data(), stored.size());
    if (sum != blob.xxh3()) {
      return absl::DataLossError(absl::StrCat(
          what, " at offset ", blob.offset(), ": checksum mismatch (stored ",
          absl::Hex(blob.xxh3(), absl::kZeroPad16), ", computed ",
          absl::Hex(sum, absl::kZeroPad16), ")"));
    }
  }
  const unsigned long long declared = ZSTD_getFrameContentSize(stored.data(), stored.size());
  bool ok = declared == blob.raw_size() &&
            ZSTD_findFrameCompressedSize(stored.data(), stored.size()) == stored.size();
  if (ok) {
    const size_t n = ZSTD_decompress(raw.data(), raw.size(), stored.data(), stored.size());
    ok = !ZSTD_isError(n) && n == raw.size();
  }
  if (guard.has_value() && guard->failed()) {
    return absl::AbortedError(absl::StrCat(EscapeInvalidUtf8(impl_->path),
                                           ": truncated or unreadable while mapped"));
  }
  if (!ok) {
    return absl::DataLossError(absl::StrCat(what, ": not one zstd frame that decodes to ",
                                            blob.raw_size(), " bytes"));
  }
  return raw;
}

std::vector<uint64_t> Container::ComputeChecksums(int threads) const {
  const size_t count = num_tensors();
  std::vector<uint64_t> sums(count);
  threads = ThreadsFor(threads);
  threads = static_cast<int>(std::min<size_t>(static_cast<size_t>(threads), std::max<size_t>(count, 1)));
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i = next.fetch_add(1); i < count; i = next.fetch_add(1)) {
      const auto data = TensorData(i);
      sums[i] = XXH3_64bits(data.data(), data.size());
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  return sums;
}

absl::Status Container::VerifyChecksums(int threads) const {
  // Hashing reads every page of the mapping: a file truncated meanwhile
  // reads as zeros under the guard instead of killing the process.
  std::optional<MappingGuard> guard;
  if (impl_->owns_mapping) guard.emplace(impl_->base, static_cast<size_t>(impl_->size));
  const std::vector<uint64_t> sums = ComputeChecksums(threads);
  if (guard.has_value() && guard->failed()) {
    return absl::AbortedError(absl::StrCat(EscapeInvalidUtf8(impl_->path),
                                           ": truncated or unreadable while mapped"));
  }
  for (size_t i = 0; i < sums.size(); ++i) {
    const TensorEntry& t = tensor(i);
    if (sums[i] != t.xxh3()) {
      return WithTensor(
          WithFile(absl::DataLossError(absl::StrCat(
                       impl_->path, ": tensor '", t.name(), "' at offset ", t.offset(),
                       ": checksum mismatch (stored ", absl::Hex(t.xxh3(), absl::kZeroPad16),
                       ", computed ", absl::Hex(sums[i], absl::kZeroPad16), ")")),
                   impl_->path),
          t.name());
    }
  }
  return absl::OkStatus();
}

}  // namespace zcpack::format

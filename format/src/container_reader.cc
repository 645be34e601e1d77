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
#include "zcpack/format/coding.h"
#include "zcpack/format/mapping_guard.h"
#include "zcpack/format/posix_file.h"
#include "zcpack/format/threads.h"
#include "zcpack/format/utf8.h"
#include "zcpack/status_macros.h"
#include "zstd.h"

namespace zcpack::format {
namespace {

// Reads `dst.size()` bytes at an offset already checked to be in bounds.
using ReadFn = std::function<absl::Status(uint64_t offset, std::span<uint8_t> dst)>;

struct Parsed {
  ContainerHeader header;
  Manifest manifest;
  std::vector<ByteRange> layer_ranges;
};

absl::Status CheckHeader(const ContainerHeader& h, std::span<const uint8_t, kHeaderSize> raw,
                         uint64_t file_size, const ReaderLimits& limits, absl::string_view file) {
  if (!std::equal(h.magic.begin(), h.magic.end(), std::begin(kMagic))) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": not a zcpack container (bad magic)"));
  }
  if (h.major_version != kMajorVersion) {
    return absl::UnimplementedError(absl::StrCat(file, ": container format version ",
                                                 h.major_version, ".", h.minor_version,
                                                 "; this reader supports ", kMajorVersion, ".x"));
  }
  const uint64_t checksum = HeaderChecksum(raw);
  if (checksum != h.header_xxh3) {
    return absl::DataLossError(absl::StrCat(file, ": header checksum mismatch (stored ",
                                            absl::Hex(h.header_xxh3, absl::kZeroPad16),
                                            ", computed ", absl::Hex(checksum, absl::kZeroPad16),
                                            ")"));
  }
  if (h.header_size != kHeaderSize) {
    return absl::DataLossError(absl::StrCat(file, ": header size field is ", h.header_size,
                                            ", expected ", kHeaderSize));
  }
  const bool reserved_zero =
      h.reserved0 == 0 && std::all_of(h.reserved.begin(), h.reserved.end(),
                                      [](uint8_t b) { return b == 0; });
  if (!reserved_zero) {
    return absl::DataLossError(absl::StrCat(file, ": reserved header bytes are not zero"));
  }
  if ((h.required_features & ~kKnownRequiredFeatures) != 0) {
    return absl::UnimplementedError(absl::StrCat(
        file, ": container requires unknown features 0x",
        absl::Hex(h.required_features & ~kKnownRequiredFeatures), "; a newer reader is needed"));
  }
  if (h.alignment_log2 < kMinAlignmentLog2 || h.alignment_log2 > kMaxAlignmentLog2) {
    return absl::DataLossError(absl::StrCat(file, ": alignment 2^", h.alignment_log2,
                                            " outside [2^", kMinAlignmentLog2, ", 2^",
                                            kMaxAlignmentLog2, "]"));
  }
  if (h.file_size != file_size) {
    return absl::DataLossError(absl::StrCat(
        file, ": file is ", file_size, " bytes but its header records ", h.file_size,
        file_size < h.file_size ? " (truncated)" : " (trailing bytes)"));
  }
  const uint64_t alignment = h.alignment();
  if (h.data_offset < kHeaderSize || h.data_offset % alignment != 0 ||
      h.data_size % alignment != 0 || !ByteRangeInBounds(h.data_offset, h.data_size, file_size)) {
    return absl::DataLossError(absl::StrCat(file, ": data region [", h.data_offset, ", +",
                                            h.data_size, ") is misaligned or outside the file"));
  }
  if (h.manifest_offset < h.data_offset + h.data_size ||
      !ByteRangeInBounds(h.manifest_offset, h.manifest_size, file_size) ||
      h.manifest_offset + h.manifest_size != file_size) {
    return absl::DataLossError(absl::StrCat(file, ": manifest [", h.manifest_offset, ", +",
                                            h.manifest_size,
                                            ") does not end the file after the data region"));
  }
  if (h.manifest_size > limits.max_manifest_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(file, ": manifest of ", h.manifest_size,
                                                     " bytes, over the limit of ",
                                                     limits.max_manifest_bytes));
  }
  if (h.manifest_raw_size > limits.max_manifest_raw_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(file, ": manifest decodes to ",
                                                     h.manifest_raw_size,
                                                     " bytes, over the limit of ",
                                                     limits.max_manifest_raw_bytes));
  }
  if ((h.required_features & kFeatureZstdManifest) == 0 && h.manifest_raw_size != h.manifest_size) {
    return absl::DataLossError(absl::StrCat(file, ": uncompressed manifest of ", h.manifest_size,
                                            " bytes declares a decoded size of ",
                                            h.manifest_raw_size));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> DecodeManifestBytes(const ContainerHeader& h, std::string stored,
                                                absl::string_view file) {
  const uint64_t checksum = XXH3_64bits(stored.data(), stored.size());
  if (checksum != h.manifest_xxh3) {
    return absl::DataLossError(absl::StrCat(file, ": manifest checksum mismatch (stored ",
                                            absl::Hex(h.manifest_xxh3, absl::kZeroPad16),
                                            ", computed ", absl::Hex(checksum, absl::kZeroPad16),
                                            ")"));
  }
  if ((h.required_features & kFeatureZstdManifest) == 0) return stored;
  const unsigned long long frame_size = ZSTD_getFrameContentSize(stored.data(), stored.size());
  // UNKNOWN is checked by name: as a number it is 2^64 - 1, which a header
  // could declare when the raw-size limit is lifted to the maximum.
  if (frame_size == ZSTD_CONTENTSIZE_ERROR || frame_size == ZSTD_CONTENTSIZE_UNKNOWN ||
      frame_size != h.manifest_raw_size) {
    return absl::DataLossError(absl::StrCat(
        file, ": zstd manifest frame declares ",
        frame_size == ZSTD_CONTENTSIZE_ERROR ? std::string("an invalid frame")
        : frame_size == ZSTD_CONTENTSIZE_UNKNOWN ? std::string("no size")
                                                 : absl::StrCat(frame_size, " bytes"),
        " but the header declares ", h.manifest_raw_size));
  }
  // SPEC.md, feature bit 0: the manifest is exactly one zstd frame. Without
  // this, skippable or empty frames could trail it unnoticed.
  const size_t frame_bytes = ZSTD_findFrameCompressedSize(stored.data(), stored.size());
  if (ZSTD_isError(frame_bytes) || frame_bytes != stored.size()) {
    return absl::DataLossError(absl::StrCat(
        file, ": zstd manifest of ", stored.size(), " bytes is not exactly one frame",
        ZSTD_isError(frame_bytes) ? absl::StrCat(" (", ZSTD_getErrorName(frame_bytes), ")")
                                  : absl::StrCat(" (first frame: ", frame_bytes, " bytes)")));
  }
  // Bounded by limits.max_manifest_raw_bytes, checked with the header.
  std::string raw(h.manifest_raw_size, '\0');
  const size_t n = ZSTD_decompress(raw.data(), raw.size(), stored.data(), stored.size());
  if (ZSTD_isError(n) || n != raw.size()) {
    return absl::DataLossError(absl::StrCat(
        file, ": zstd manifest does not decode to its declared ", raw.size(), " bytes",
        ZSTD_isError(n) ? absl::StrCat(" (", ZSTD_getErrorName(n), ")")
                        : absl::StrCat(" (got ", n, ")")));
  }
  return raw;
}

absl::StatusOr<Parsed> Parse(const ReadFn& read, uint64_t file_size, const ReaderLimits& limits,
                             absl::string_view file) {
  std::array<uint8_t, kHeaderSize> raw{};
  if (file_size < kHeaderSize) {
    const size_t present = static_cast<size_t>(file_size);
    ZCPACK_RETURN_IF_ERROR(read(0, std::span<uint8_t>(raw.data(), present)));
    const size_t compared = std::min(present, kMagicSize);
    if (std::equal(raw.begin(), raw.begin() + compared, std::begin(kMagic))) {
      return absl::DataLossError(absl::StrCat(file, ": truncated: ", file_size,
                                              " bytes, the header alone needs ", kHeaderSize));
    }
    return absl::InvalidArgumentError(absl::StrCat(file, ": not a zcpack container (bad magic)"));
  }
  ZCPACK_RETURN_IF_ERROR(read(0, raw));
  Parsed parsed;
  parsed.header = DecodeHeader(raw);
  const ContainerHeader& h = parsed.header;
  ZCPACK_RETURN_IF_ERROR(CheckHeader(h, raw, file_size, limits, file));

  std::string stored(h.manifest_size, '\0');  // bounded by limits.max_manifest_bytes
  ZCPACK_RETURN_IF_ERROR(
      read(h.manifest_offset,
           std::span<uint8_t>(reinterpret_cast<uint8_t*>(stored.data()), stored.size())));
  ZCPACK_ASSIGN_OR_RETURN(std::string manifest_bytes,
                          DecodeManifestBytes(h, std::move(stored), file));
  if (!parsed.manifest.ParseFromString(manifest_bytes)) {
    return absl::DataLossError(absl::StrCat(file, ": manifest does not parse as a protobuf Manifest"));
  }
  const internal::DataLayout layout{h.alignment(), h.data_offset, h.data_size,
                                    h.required_features};
  ZCPACK_RETURN_IF_ERROR(internal::ValidateTensorTable(parsed.manifest.tensors(), layout, limits,
                                                       file, &parsed.layer_ranges));
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
  if (!parsed.ok()) return parsed.status();
  impl->parsed = *std::move(parsed);
  void* base = ::mmap(nullptr, impl->size, PROT_READ, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) return ErrnoError(errno, path, "mmap");
  impl->base = static_cast<const uint8_t*>(base);
  impl->owns_mapping = true;
  for (size_t i = 0; i < static_cast<size_t>(impl->parsed.manifest.tensors_size()); ++i) {
    impl->by_name.emplace(impl->parsed.manifest.tensors(static_cast<int>(i)).name(), i);
  }
  return Finalize(std::unique_ptr<Container>(new Container(std::move(impl))), options);
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
      return absl::DataLossError(absl::StrCat(
          impl_->path, ": tensor '", t.name(), "' at offset ", t.offset(),
          ": checksum mismatch (stored ", absl::Hex(t.xxh3(), absl::kZeroPad16), ", computed ",
          absl::Hex(sums[i], absl::kZeroPad16), ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace zcpack::format

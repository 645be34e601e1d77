#include "zcpack/converter/source_model.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "zcpack/converter/architecture.h"
#include "zcpack/format/dtype.h"
#include "zcpack/format/posix_file.h"
#include "zcpack/format/utf8.h"
#include "zcpack/status_macros.h"
#include "xxhash.h"
// Debian's libxxhash on x86-64 also carries XXH3 kernels for AVX2 and AVX-512,
// chosen at run time: the same digests at about twice the SSE2 speed. The
// header maps XXH3_64bits() and XXH3_64bits_update() to them.
#if defined(__x86_64__) && __has_include("xxh_x86dispatch.h")
#include "xxh_x86dispatch.h"
#endif
#include "zstd.h"

namespace zcpack::converter {
namespace {

namespace fs = std::filesystem;

constexpr absl::string_view kConfigFile = "config.json";
constexpr absl::string_view kSingleWeightsFile = "model.safetensors";
constexpr absl::string_view kIndexFile = "model.safetensors.index.json";
constexpr absl::string_view kTokenizerFiles[] = {"tokenizer.json", "tokenizer.model"};

absl::string_view View(const std::string& s) { return absl::string_view(s.data(), s.size()); }

std::string BaseName(const std::string& path) { return fs::path(path).filename().string(); }

std::string JoinPath(const std::string& dir, absl::string_view name) {
  return (fs::path(dir) / std::string(name)).string();
}

bool IsRegularFile(const std::string& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

absl::string_view AsText(std::span<const uint8_t> bytes) {
  return absl::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

// The source dtypes a container holds: floats, and the quantized blocks the
// runtime runs (GGUF only: safetensors has no such dtypes).
bool IsConvertibleDType(format::DType dtype) {
  switch (dtype) {
    case format::DTYPE_F32:
    case format::DTYPE_F16:
    case format::DTYPE_BF16:
    case format::DTYPE_Q4_0:
    case format::DTYPE_Q4_1:
    case format::DTYPE_Q5_0:
    case format::DTYPE_Q5_1:
    case format::DTYPE_Q8_0:
    case format::DTYPE_Q4_K:
    case format::DTYPE_Q5_K:
    case format::DTYPE_Q6_K:
      return true;
    default:
      return false;
  }
}

// UnrunnableTypesError(): the one-line refusal of the GGUF tensors whose
// ggml type has no container dtype; OK when there are none.
absl::Status UnrunnableTypesError(const std::string& path,
                                  std::span<const GgufTensorInfo* const> tensors) {
  std::vector<std::string> named;
  for (const GgufTensorInfo* info : tensors) {
    if (info->dtype != format::DTYPE_UNSPECIFIED) continue;
    named.push_back(absl::StrCat(format::EscapeInvalidUtf8(info->name), " (",
                                 GgmlTypeName(info->ggml_type), ")"));
  }
  if (named.empty()) return absl::OkStatus();
  return absl::UnimplementedError(absl::StrCat(
      format::EscapeInvalidUtf8(path), ": ", named.size(),
      named.size() == 1 ? " tensor has a type" : " tensors have a type",
      " zcpack cannot run yet: ", absl::StrJoin(named, ", ")));
}

// The sources a GGUF written by `zcpack export` carries (gguf.h,
// kGgufSourceNamesKey), when the file has them and its tensor data (in
// `by_offset` order) still hashes to the recorded value; nullopt otherwise,
// with a note saying why when the keys are there. Hashing reads every tensor
// once (the conversion reads them again, from the page cache).
struct CarriedProvenance {
  std::vector<format::SourceFile> sources;
  std::optional<std::string> tokenizer_file;
};
std::optional<CarriedProvenance> CarriedProvenanceOf(const GgufFile& gguf,
                                                     std::span<const GgufTensorInfo* const> by_offset,
                                                     std::span<const uint8_t> bytes,
                                                     const std::string& path,
                                                     std::vector<std::string>* notes) {
  const GgufValue* names = gguf.FindMetadata(kGgufSourceNamesKey);
  const GgufValue* sizes = gguf.FindMetadata(kGgufSourceSizesKey);
  const GgufValue* hash = gguf.FindMetadata(kGgufSourceTensorDataXxh3Key);
  const GgufValue* tokenizer = gguf.FindMetadata(kGgufSourceTokenizerFileKey);
  if (names == nullptr && sizes == nullptr && hash == nullptr && tokenizer == nullptr) {
    return std::nullopt;
  }
  const auto ignored = [&](absl::string_view why) {
    notes->push_back(format::EscapeInvalidUtf8(absl::StrCat(
        path, ": ", why, "; its zcpack.source.* provenance is ignored and this file recorded as"
        " the source")));
    return std::nullopt;
  };
  const GgufArray* name_array = names == nullptr ? nullptr : names->AsArray();
  const GgufArray* size_array = sizes == nullptr ? nullptr : sizes->AsArray();
  const std::optional<uint64_t> recorded = hash == nullptr ? std::nullopt : hash->AsUnsigned();
  if (name_array == nullptr || name_array->element_type() != GgufValueType::kString ||
      size_array == nullptr || size_array->element_type() != GgufValueType::kUint64 ||
      name_array->size() != size_array->size() || !recorded.has_value() ||
      (tokenizer != nullptr && tokenizer->AsString() == nullptr)) {
    return ignored("malformed zcpack.source.* keys");
  }
  XXH3_state_t* state = XXH3_createState();
  if (state == nullptr) return ignored("no memory to check the tensor data's checksum");
  XXH3_64bits_reset(state);
  for (const GgufTensorInfo* info : by_offset) {
    XXH3_64bits_update(state, bytes.data() + info->offset, info->nbytes);
  }
  const uint64_t actual = XXH3_64bits_digest(state);
  XXH3_freeState(state);
  if (actual != *recorded) return ignored("the tensor data changed since it was exported");
  CarriedProvenance carried;
  name_array->ForEach([&](const GgufElement& e) {
    format::SourceFile f;
    f.set_name(format::EscapeInvalidUtf8(std::get<absl::string_view>(e)));
    carried.sources.push_back(std::move(f));
  });
  size_t i = 0;
  size_array->ForEach([&](const GgufElement& e) { carried.sources[i++].set_size(std::get<uint64_t>(e)); });
  if (tokenizer != nullptr) carried.tokenizer_file = format::EscapeInvalidUtf8(*tokenizer->AsString());
  return carried;
}

bool HasGgufMagic(std::span<const uint8_t> bytes) {
  return bytes.size() >= sizeof(kGgufMagic) &&
         std::equal(std::begin(kGgufMagic), std::end(kGgufMagic), bytes.begin());
}

// Assembles a SourceModel: maps files (recording each as a source) and adds
// tensors and tokenizers.
class ModelBuilder {
 public:
  explicit ModelBuilder(const SourceOptions& options)
      : options_(options), model_(std::make_unique<SourceModel>()) {}

  // Maps `path` and records it as a source. The returned view stays valid for
  // the model's lifetime (the model owns the mapping).
  absl::StatusOr<std::span<const uint8_t>> Map(const std::string& path, uint64_t max_bytes) {
    ZCPACK_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path));
    const std::span<const uint8_t> bytes = file.bytes();
    if (bytes.size() > max_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(path, ": ", bytes.size(),
                                                       " bytes exceeds the limit of ", max_bytes));
    }
    format::SourceFile source;
    // Manifest strings must be UTF-8; a file name need not be.
    source.set_name(format::EscapeInvalidUtf8(BaseName(path)));
    source.set_size(bytes.size());
    model_->sources.push_back(std::move(source));
    model_->mappings.push_back(std::move(file));
    return bytes;
  }

  absl::Status AddTensor(const std::string& name, format::DType dtype,
                         absl::string_view dtype_name, const std::vector<uint64_t>& shape,
                         std::span<const uint8_t> data, const std::string& file,
                         TensorNaming naming) {
    if (!format::IsValidUtf8(name)) {
      // The container stores names as protobuf strings, which must be UTF-8:
      // writing this one would give a file nothing can read.
      return absl::DataLossError(absl::StrCat(format::EscapeInvalidUtf8(file), ": tensor '",
                                              format::EscapeInvalidUtf8(name),
                                              "': name is not valid UTF-8"));
    }
    if (!IsConvertibleDType(dtype)) {
      return absl::UnimplementedError(absl::StrCat(file, ": tensor '", View(name), "' has dtype ",
                                                   dtype_name,
                                                   "; zcpack converts F32, F16 and BF16"));
    }
    const TensorPlacement placement = PlaceTensor(name, naming);
    model_->tensors.push_back(
        SourceTensor{name, dtype, shape, data, file, placement.role, placement.layer});
    return absl::OkStatus();
  }

  absl::Status AddSafetensors(std::span<const uint8_t> bytes, const SafetensorsHeader& header,
                              const std::string& file) {
    for (const SafetensorsEntry& e : header.tensors) {
      ZCPACK_RETURN_IF_ERROR(AddTensor(e.name, e.dtype, e.dtype_name, e.shape,
                                       bytes.subspan(e.offset, e.nbytes), file,
                                       TensorNaming::kHuggingFace));
    }
    return absl::OkStatus();
  }

  // Reads config.json from `dir` into the model info.
  absl::Status AddHfConfig(const std::string& dir, absl::string_view weights_name) {
    const std::string path = JoinPath(dir, kConfigFile);
    if (!IsRegularFile(path)) {
      return absl::NotFoundError(absl::StrCat(path, ": not found; zcpack reads the model's ",
                                              "hyperparameters from the config.json beside ",
                                              weights_name));
    }
    ZCPACK_ASSIGN_OR_RETURN(const std::span<const uint8_t> text,
                            Map(path, options_.max_config_bytes));
    ZCPACK_ASSIGN_OR_RETURN(model_->model, ModelInfoFromHfConfig(AsText(text), path));
    return absl::OkStatus();
  }

  // Carries tokenizer.json / tokenizer.model from `dir`, when present.
  absl::Status AddTokenizerFiles(const std::string& dir) {
    for (absl::string_view kind : kTokenizerFiles) {
      const std::string path = JoinPath(dir, kind);
      if (!IsRegularFile(path)) continue;
      ZCPACK_ASSIGN_OR_RETURN(const std::span<const uint8_t> raw,
                              Map(path, options_.max_tokenizer_bytes));
      ZCPACK_ASSIGN_OR_RETURN(format::TokenizerBlob blob,
                              MakeTokenizerBlob(kind, kind, raw, options_.tokenizer_zstd_level));
      model_->tokenizers.push_back(std::move(blob));
    }
    return absl::OkStatus();
  }

  SourceModel& model() { return *model_; }
  const SourceOptions& options() const { return options_; }
  std::unique_ptr<SourceModel> Finish() { return std::move(model_); }

 private:
  const SourceOptions& options_;
  std::unique_ptr<SourceModel> model_;
};

// The shards of a sharded checkpoint, checked against the index both ways.
absl::Status AddShards(ModelBuilder& builder, const std::string& dir) {
  const std::string index_path = JoinPath(dir, kIndexFile);
  const SafetensorsLimits& limits = builder.options().safetensors;
  ZCPACK_ASSIGN_OR_RETURN(const std::span<const uint8_t> index_text,
                          builder.Map(index_path, limits.max_index_bytes));
  ZCPACK_ASSIGN_OR_RETURN(const SafetensorsIndex index,
                          ParseSafetensorsIndex(AsText(index_text), index_path, limits));
  std::map<std::string, std::vector<std::string>> tensors_by_shard;
  for (const auto& [tensor, shard] : index.weight_map) tensors_by_shard[shard].push_back(tensor);

  for (const auto& [shard, listed] : tensors_by_shard) {  // sorted by shard name
    const std::string path = JoinPath(dir, shard);
    if (!IsRegularFile(path)) {
      return absl::NotFoundError(absl::StrCat(path, ": shard not found (", kIndexFile,
                                              " maps tensor '", View(listed.front()),
                                              "' and ", listed.size() - 1, " others to it)"));
    }
    ZCPACK_ASSIGN_OR_RETURN(const std::span<const uint8_t> bytes,
                            builder.Map(path, UINT64_MAX));
    ZCPACK_ASSIGN_OR_RETURN(const SafetensorsHeader header, ParseSafetensors(bytes, path, limits));
    std::vector<std::string> held;
    held.reserve(header.tensors.size());
    for (const SafetensorsEntry& e : header.tensors) held.push_back(e.name);
    std::sort(held.begin(), held.end());  // `listed` is sorted: weight_map is.
    std::vector<std::string> missing;
    std::set_difference(listed.begin(), listed.end(), held.begin(), held.end(),
                        std::back_inserter(missing));
    if (!missing.empty()) {
      return absl::DataLossError(absl::StrCat(path, ": ", kIndexFile, " maps tensor '",
                                              View(missing.front()), "' to shard '", View(shard),
                                              "', which does not hold it (", missing.size(),
                                              " such tensors)"));
    }
    std::vector<std::string> unlisted;
    std::set_difference(held.begin(), held.end(), listed.begin(), listed.end(),
                        std::back_inserter(unlisted));
    if (!unlisted.empty()) {
      return absl::DataLossError(absl::StrCat(path, ": shard holds tensor '",
                                              View(unlisted.front()), "', which ", kIndexFile,
                                              " does not map to it (", unlisted.size(),
                                              " such tensors)"));
    }
    ZCPACK_RETURN_IF_ERROR(builder.AddSafetensors(bytes, header, path));
  }
  return absl::OkStatus();
}

absl::Status BuildHfDirectory(ModelBuilder& builder, const std::string& dir,
                              const SourceOptions& options) {
  const std::string index_path = JoinPath(dir, kIndexFile);
  const std::string single_path = JoinPath(dir, kSingleWeightsFile);
  const bool sharded = IsRegularFile(index_path);
  if (!sharded && !IsRegularFile(single_path)) {
    return absl::NotFoundError(absl::StrCat(dir, ": holds neither ", kSingleWeightsFile, " nor ",
                                            kIndexFile));
  }
  ZCPACK_RETURN_IF_ERROR(builder.AddHfConfig(dir, sharded ? kIndexFile : kSingleWeightsFile));
  if (sharded) {
    ZCPACK_RETURN_IF_ERROR(AddShards(builder, dir));
  } else {
    ZCPACK_ASSIGN_OR_RETURN(const std::span<const uint8_t> bytes,
                            builder.Map(single_path, UINT64_MAX));
    ZCPACK_ASSIGN_OR_RETURN(const SafetensorsHeader header,
                            ParseSafetensors(bytes, single_path, options.safetensors));
    ZCPACK_RETURN_IF_ERROR(builder.AddSafetensors(bytes, header, single_path));
  }
  return builder.AddTokenizerFiles(dir);
}

absl::Status BuildSingleFile(ModelBuilder& builder, const std::string& path,
                             const SourceOptions& options) {
  ZCPACK_ASSIGN_OR_RETURN(const std::span<const uint8_t> bytes, builder.Map(path, UINT64_MAX));
  if (HasGgufMagic(bytes)) {
    ZCPACK_ASSIGN_OR_RETURN(const GgufFile gguf, ParseGguf(bytes, path, options.gguf));
    ZCPACK_ASSIGN_OR_RETURN(builder.model().model, GgufModelInfo(gguf, path));
    std::vector<const GgufTensorInfo*> by_offset;
    by_offset.reserve(gguf.tensors.size());
    for (const GgufTensorInfo& info : gguf.tensors) by_offset.push_back(&info);
    std::stable_sort(by_offset.begin(), by_offset.end(),
                     [](const GgufTensorInfo* a, const GgufTensorInfo* b) {
                       return a->offset < b->offset;
                     });
    ZCPACK_RETURN_IF_ERROR(UnrunnableTypesError(path, by_offset));
    for (const GgufTensorInfo* info : by_offset) {
      ZCPACK_RETURN_IF_ERROR(builder.AddTensor(info->name, info->dtype,
                                               format::DTypeName(info->dtype), info->shape,
                                               bytes.subspan(info->offset, info->nbytes), path,
                                               TensorNaming::kGguf));
    }
    std::optional<CarriedProvenance> carried =
        CarriedProvenanceOf(gguf, by_offset, bytes, path, &builder.model().notes);
    std::string tokenizer_file = format::EscapeInvalidUtf8(BaseName(path));
    if (carried.has_value()) {
      builder.model().sources = std::move(carried->sources);
      if (carried->tokenizer_file.has_value()) tokenizer_file = *carried->tokenizer_file;
    }
    ZCPACK_ASSIGN_OR_RETURN(std::optional<format::TokenizerBlob> blob,
                            GgufTokenizerBlob(gguf, tokenizer_file, options.tokenizer_zstd_level));
    if (blob.has_value()) builder.model().tokenizers.push_back(std::move(*blob));
    return absl::OkStatus();
  }
  // Safetensors has no magic: anything that is not GGUF is tried as one, and
  // ParseSafetensors() says when it is not.
  ZCPACK_ASSIGN_OR_RETURN(const SafetensorsHeader header,
                          ParseSafetensors(bytes, path, options.safetensors));
  const fs::path parent = fs::path(path).parent_path();
  const std::string dir = parent.empty() ? std::string(".") : parent.string();
  ZCPACK_RETURN_IF_ERROR(builder.AddHfConfig(dir, BaseName(path)));
  ZCPACK_RETURN_IF_ERROR(builder.AddSafetensors(bytes, header, path));
  return builder.AddTokenizerFiles(dir);
}

format::TokenizerBlob BlobOf(absl::string_view kind, absl::string_view file_name,
                             uint64_t raw_size, std::string compressed) {
  compressed.shrink_to_fit();  // the buffer was sized for the worst case
  format::TokenizerBlob blob;
  blob.set_kind(std::string(kind));
  blob.set_file_name(std::string(file_name));
  blob.set_raw_size(raw_size);
  blob.set_zstd_data(std::move(compressed));
  return blob;
}

}  // namespace

// ---- MappedFile ---------------------------------------------------------------

MappedFile::MappedFile(std::string path, const uint8_t* data, uint64_t size, format::ScopedFd fd)
    : path_(std::move(path)),
      data_(data),
      size_(size),
      fd_(std::move(fd)),
      guard_(data, static_cast<size_t>(size)) {}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      fd_(std::move(other.fd_)),
      guard_(std::move(other.guard_)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    Unmap();
    path_ = std::move(other.path_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    fd_ = std::move(other.fd_);
    guard_ = std::move(other.guard_);
  }
  return *this;
}

MappedFile::~MappedFile() { Unmap(); }

void MappedFile::Unmap() {
  guard_ = format::MappingGuard();  // unregister before the range goes
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
  data_ = nullptr;
  size_ = 0;
  fd_ = format::ScopedFd();
}

absl::Status MappedFile::CheckMapping() const {
  if (!guard_.failed()) return absl::OkStatus();
  return absl::AbortedError(absl::StrCat(format::EscapeInvalidUtf8(path_),
                                         ": truncated or unreadable while mapped"));
}

bool MappedFile::Contains(std::span<const uint8_t> range) const {
  if (range.empty()) return true;
  const uintptr_t base = reinterpret_cast<uintptr_t>(data_);
  const uintptr_t at = reinterpret_cast<uintptr_t>(range.data());
  return data_ != nullptr && at >= base && at - base <= size_ && range.size() <= size_ - (at - base);
}

absl::Status MappedFile::ReadInto(std::span<const uint8_t> range, uint8_t* out) const {
  uint64_t offset = static_cast<uint64_t>(range.data() - data_);
  size_t left = range.size();
  while (left > 0) {
    const ssize_t got = ::pread(fd_.get(), out, left, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      return absl::AbortedError(absl::StrCat(format::EscapeInvalidUtf8(path_),
                                             ": truncated or unreadable while mapped"));
    }
    out += got;
    offset += static_cast<uint64_t>(got);
    left -= static_cast<size_t>(got);
  }
  return absl::OkStatus();
}

absl::Status SourceModel::CheckMappings() const {
  for (const MappedFile& m : mappings) ZCPACK_RETURN_IF_ERROR(m.CheckMapping());
  return absl::OkStatus();
}

absl::StatusOr<MappedFile> MappedFile::Open(const std::string& path) {
  ZCPACK_ASSIGN_OR_RETURN(format::ScopedFd fd, format::OpenReadOnly(path));
  ZCPACK_ASSIGN_OR_RETURN(const uint64_t size, format::FileSize(fd.get(), path));
  if (size == 0) return MappedFile(path, nullptr, 0, format::ScopedFd());
  if (size > SIZE_MAX) {
    return absl::ResourceExhaustedError(absl::StrCat(path, ": ", size,
                                                     " bytes cannot be mapped on this host"));
  }
  void* base = ::mmap(nullptr, static_cast<size_t>(size), PROT_READ, MAP_SHARED, fd.get(), 0);
  if (base == MAP_FAILED) return format::ErrnoError(errno, path, "mmap");
  // The descriptor stays open with the mapping, for ReadInto().
  return MappedFile(path, static_cast<const uint8_t*>(base), size, std::move(fd));
}

// ---- OpenSourceModel ------------------------------------------------------------

absl::StatusOr<std::unique_ptr<SourceModel>> OpenSourceModel(const std::string& path,
                                                             const SourceOptions& options) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (ec) return format::ErrnoError(ec.value(), path, "stat");
  ModelBuilder builder(options);
  const absl::Status built = fs::is_directory(status) ? BuildHfDirectory(builder, path, options)
                                                      : BuildSingleFile(builder, path, options);
  // A file truncated while it was parsed reads as zeros, so its parse error
  // is a symptom: report the truncation instead.
  ZCPACK_RETURN_IF_ERROR(builder.model().CheckMappings());
  ZCPACK_RETURN_IF_ERROR(built);
  return builder.Finish();
}

absl::StatusOr<std::unique_ptr<SourceModel>> OpenTokenizerSource(const std::string& path,
                                                                 const SourceOptions& options) {
  ModelBuilder builder(options);
  const auto carry = [&]() -> absl::Status {
    ZCPACK_ASSIGN_OR_RETURN(const std::span<const uint8_t> bytes, builder.Map(path, UINT64_MAX));
    const std::string name = BaseName(path);
    if (HasGgufMagic(bytes)) {
      ZCPACK_ASSIGN_OR_RETURN(const GgufFile gguf, ParseGguf(bytes, path, options.gguf));
      ZCPACK_ASSIGN_OR_RETURN(std::optional<format::TokenizerBlob> blob,
                              GgufTokenizerBlob(gguf, format::EscapeInvalidUtf8(name),
                                                options.tokenizer_zstd_level));
      if (!blob.has_value()) {
        return absl::InvalidArgumentError(absl::StrCat(
            format::EscapeInvalidUtf8(path), ": a GGUF file without tokenizer.* metadata"));
      }
      builder.model().tokenizers.push_back(std::move(*blob));
      return absl::OkStatus();
    }
    for (absl::string_view kind : kTokenizerFiles) {
      if (name != kind) continue;
      if (bytes.size() > options.max_tokenizer_bytes) {
        return absl::ResourceExhaustedError(
            absl::StrCat(format::EscapeInvalidUtf8(path), ": ", bytes.size(),
                         " bytes exceeds the limit of ", options.max_tokenizer_bytes));
      }
      ZCPACK_ASSIGN_OR_RETURN(format::TokenizerBlob blob,
                              MakeTokenizerBlob(kind, kind, bytes, options.tokenizer_zstd_level));
      builder.model().tokenizers.push_back(std::move(blob));
      return absl::OkStatus();
    }
    return absl::InvalidArgumentError(
        absl::StrCat(format::EscapeInvalidUtf8(path),
                     ": not a tokenizer zcpack carries (a GGUF file with tokenizer.* metadata, "
                     "a tokenizer.json or a tokenizer.model)"));
  };
  const absl::Status carried = carry();
  ZCPACK_RETURN_IF_ERROR(builder.model().CheckMappings());
  ZCPACK_RETURN_IF_ERROR(carried);
  return builder.Finish();
}

absl::StatusOr<format::TokenizerBlob> MakeTokenizerBlob(absl::string_view kind,
                                                        absl::string_view file_name,
                                                        std::span<const uint8_t> raw,
                                                        int zstd_level) {
  std::string compressed(ZSTD_compressBound(raw.size()), '\0');
  const size_t n =
      ZSTD_compress(compressed.data(), compressed.size(), raw.data(), raw.size(), zstd_level);
  if (ZSTD_isError(n)) {
    return absl::InternalError(absl::StrCat(file_name, ": zstd compression failed: ",
                                            ZSTD_getErrorName(n)));
  }
  compressed.resize(n);
  return BlobOf(kind, file_name, raw.size(), std::move(compressed));
}

absl::StatusOr<format::TokenizerBlob> MakeStreamedTokenizerBlob(absl::string_view kind,
                                                                absl::string_view file_name,
                                                                TextProducer produce,
                                                                int zstd_level) {
  uint64_t raw_size = 0;
  produce([&](absl::string_view piece) { raw_size += piece.size(); });

  const std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> cctx(ZSTD_createCCtx(), ZSTD_freeCCtx);
  if (cctx == nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat(file_name, ": cannot create a zstd context"));
  }
  size_t rc = ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, zstd_level);
  // The pledged size puts the content size in the frame header, as the
  // one-shot ZSTD_compress() does, and lets zstd size its window for it.
  if (!ZSTD_isError(rc)) rc = ZSTD_CCtx_setPledgedSrcSize(cctx.get(), raw_size);
  std::string compressed;
  std::string out_buffer(ZSTD_CStreamOutSize(), '\0');
  std::string pending;
  constexpr size_t kPieceBytes = size_t{128} << 10;
  pending.reserve(kPieceBytes);
  uint64_t fed = 0;
  const auto feed = [&](ZSTD_EndDirective mode) {
    ZSTD_inBuffer in{pending.data(), pending.size(), 0};
    for (;;) {
      ZSTD_outBuffer out{out_buffer.data(), out_buffer.size(), 0};
      const size_t left = ZSTD_compressStream2(cctx.get(), &out, &in, mode);
      if (ZSTD_isError(left)) return left;
      compressed.append(out_buffer.data(), out.pos);
      const bool done = mode == ZSTD_e_end ? left == 0 : in.pos == in.size;
      if (done) break;
    }
    fed += pending.size();
    pending.clear();
    return size_t{0};
  };
  if (!ZSTD_isError(rc)) {
    produce([&](absl::string_view piece) {
      while (!piece.empty() && !ZSTD_isError(rc)) {
        const size_t take = std::min(piece.size(), kPieceBytes - pending.size());
        pending.append(piece.data(), take);
        piece.remove_prefix(take);
        if (pending.size() == kPieceBytes) rc = feed(ZSTD_e_continue);
      }
    });
  }
  if (!ZSTD_isError(rc)) rc = feed(ZSTD_e_end);
  if (ZSTD_isError(rc)) {
    return absl::InternalError(absl::StrCat(file_name, ": zstd compression failed: ",
                                            ZSTD_getErrorName(rc)));
  }
  if (fed != raw_size) {
    return absl::InternalError(absl::StrCat(file_name, ": the text changed between passes (",
                                            raw_size, " then ", fed, " bytes)"));
  }
  return BlobOf(kind, file_name, raw_size, std::move(compressed));
}

}  // namespace zcpack::converter

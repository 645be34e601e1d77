#include "zcpack/exporter/gguf_writer.h"

#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "zcpack/format/coding.h"
#include "zcpack/format/dtype.h"
#include "zcpack/format/posix_file.h"
#include "zcpack/format/temp_file.h"
#include "zcpack/format/utf8.h"
#include "zcpack/status_macros.h"

namespace zcpack::exporter {
namespace {

using converter::GgufValueType;

constexpr uint32_t kGgufVersion = 3;
constexpr uint64_t kHeaderBytes = 4 + 4 + 8 + 8;

void PutU32(std::string* out, uint32_t v) {
  uint8_t b[4];
  format::EncodeFixed32(b, v);
  out->append(reinterpret_cast<const char*>(b), 4);
}
void PutU64(std::string* out, uint64_t v) {
  uint8_t b[8];
  format::EncodeFixed64(b, v);
  out->append(reinterpret_cast<const char*>(b), 8);
}
void PutString(std::string* out, absl::string_view s) {
  PutU64(out, s.size());
  out->append(s.data(), s.size());
}
std::string Typed(GgufValueType type) {
  std::string out;
  PutU32(&out, static_cast<uint32_t>(type));
  return out;
}
std::string ArrayHeader(GgufValueType element_type, uint64_t count) {
  std::string out = Typed(GgufValueType::kArray);
  PutU32(&out, static_cast<uint32_t>(element_type));
  PutU64(&out, count);
  return out;
}

uint64_t AlignUp(uint64_t v, uint64_t alignment) { return (v + alignment - 1) / alignment * alignment; }

}  // namespace

absl::Status CheckGgufAlignment(uint64_t alignment) {
  if (alignment < kMinGgufAlignment || alignment > kMaxGgufAlignment ||
      !std::has_single_bit(alignment)) {
    return absl::InvalidArgumentError(absl::StrCat("alignment ", alignment,
                                                   " is not a power of two from ",
                                                   kMinGgufAlignment, " to ", kMaxGgufAlignment));
  }
  return absl::OkStatus();
}

void GgufMetadata::Set(absl::string_view key, std::string encoded) {
  for (Entry& e : entries_) {
    if (e.key == key) {
      e.encoded = std::move(encoded);
      return;
    }
  }
  entries_.push_back({std::string(key), std::move(encoded)});
}

void GgufMetadata::AddString(absl::string_view key, absl::string_view value) {
  std::string e = Typed(GgufValueType::kString);
  PutString(&e, value);
  Set(key, std::move(e));
}
void GgufMetadata::AddBool(absl::string_view key, bool value) {
  std::string e = Typed(GgufValueType::kBool);
  e.push_back(value ? 1 : 0);
  Set(key, std::move(e));
}
void GgufMetadata::AddUint32(absl::string_view key, uint32_t value) {
  std::string e = Typed(GgufValueType::kUint32);
  PutU32(&e, value);
  Set(key, std::move(e));
}
void GgufMetadata::AddInt32(absl::string_view key, int32_t value) {
  std::string e = Typed(GgufValueType::kInt32);
  PutU32(&e, static_cast<uint32_t>(value));
  Set(key, std::move(e));
}
void GgufMetadata::AddUint64(absl::string_view key, uint64_t value) {
  std::string e = Typed(GgufValueType::kUint64);
  PutU64(&e, value);
  Set(key, std::move(e));
}
void GgufMetadata::AddInt64(absl::string_view key, int64_t value) {
  std::string e = Typed(GgufValueType::kInt64);
  PutU64(&e, static_cast<uint64_t>(value));
  Set(key, std::move(e));
}
void GgufMetadata::AddFloat32(absl::string_view key, float value) {
  std::string e = Typed(GgufValueType::kFloat32);
  PutU32(&e, std::bit_cast<uint32_t>(value));
  Set(key, std::move(e));
}
void GgufMetadata::AddFloat64(absl::string_view key, double value) {
  std::string e = Typed(GgufValueType::kFloat64);
  PutU64(&e, std::bit_cast<uint64_t>(value));
  Set(key, std::move(e));
}
void GgufMetadata::AddStringArray(absl::string_view key, std::span<const std::string> values) {
  std::string e = ArrayHeader(GgufValueType::kString, values.size());
  for (const std::string& v : values) PutString(&e, v);
  Set(key, std::move(e));
}
void GgufMetadata::AddInt32Array(absl::string_view key, std::span<const int32_t> values) {
  std::string e = ArrayHeader(GgufValueType::kInt32, values.size());
  for (int32_t v : values) PutU32(&e, static_cast<uint32_t>(v));
  Set(key, std::move(e));
}
void GgufMetadata::AddFloat32Array(absl::string_view key, std::span<const float> values) {
  std::string e = ArrayHeader(GgufValueType::kFloat32, values.size());
  for (float v : values) PutU32(&e, std::bit_cast<uint32_t>(v));
  Set(key, std::move(e));
}
void GgufMetadata::AddUint64Array(absl::string_view key, std::span<const uint64_t> values) {
  std::string e = ArrayHeader(GgufValueType::kUint64, values.size());
  for (uint64_t v : values) PutU64(&e, v);
  Set(key, std::move(e));
}
void GgufMetadata::AddArray(absl::string_view key, GgufValueType element_type, uint64_t count,
                            std::span<const uint8_t> encoded) {
  std::string e = ArrayHeader(element_type, count);
  e.append(reinterpret_cast<const char*>(encoded.data()), encoded.size());
  Set(key, std::move(e));
}

void GgufMetadata::AddValue(absl::string_view key, const converter::GgufValue& value) {
  if (const converter::GgufArray* array = value.AsArray()) {
    AddArray(key, array->element_type(), array->size(), array->encoded());
    return;
  }
  if (const std::string* s = value.AsString()) {
    AddString(key, *s);
    return;
  }
  // Scalars: the stored type and width, from the widened value.
  std::string e = Typed(value.type);
  uint64_t raw = 0;
  if (const auto* u = std::get_if<uint64_t>(&value.data)) raw = *u;
  if (const auto* i = std::get_if<int64_t>(&value.data)) raw = static_cast<uint64_t>(*i);
  if (const auto* b = std::get_if<bool>(&value.data)) raw = *b ? 1 : 0;
  if (const auto* d = std::get_if<double>(&value.data)) {
    raw = value.type == GgufValueType::kFloat32
              ? std::bit_cast<uint32_t>(static_cast<float>(*d))
              : std::bit_cast<uint64_t>(*d);
  }
  switch (value.type) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kBool: e.push_back(static_cast<char>(raw & 0xff)); break;
    case GgufValueType::kUint16:
    case GgufValueType::kInt16: {
      uint8_t b[2];
      format::EncodeFixed16(b, static_cast<uint16_t>(raw));
      e.append(reinterpret_cast<const char*>(b), 2);
      break;
    }
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kFloat32: PutU32(&e, static_cast<uint32_t>(raw)); break;
    default: PutU64(&e, raw); break;
  }
  Set(key, std::move(e));
}

bool GgufMetadata::ReplaceUint64(absl::string_view key, uint64_t value) {
  const std::string type = Typed(GgufValueType::kUint64);
  for (Entry& e : entries_) {
    if (e.key != key) continue;
    if (e.encoded.size() != 12 || e.encoded.compare(0, 4, type) != 0) return false;
    e.encoded = type;
    PutU64(&e.encoded, value);
    return true;
  }
  return false;
}

bool GgufMetadata::Contains(absl::string_view key) const {
  for (const Entry& e : entries_) {
    if (e.key == key) return true;
  }
  return false;
}

uint64_t GgufMetadata::EncodedSize() const {
  uint64_t size = 0;
  for (const Entry& e : entries_) size += 8 + e.key.size() + e.encoded.size();
  return size;
}

void GgufMetadata::AppendEncoded(std::string* out) const {
  for (const Entry& e : entries_) {
    PutString(out, e.key);
    out->append(e.encoded);
  }
}

struct GgufFileWriter::Impl {
  std::string destination;
  GgufMetadata metadata;
  std::vector<GgufTensorSpec> tensors;
  std::vector<uint64_t> offsets;   // absolute
  std::vector<uint64_t> written;   // bytes appended per tensor
  uint64_t alignment = 0;
  uint64_t data_offset = 0;
  uint64_t file_size = 0;
  bool overwrite = false;
  std::optional<format::TempFile> temp;
  std::string EncodeHeader() const {
    std::string out;
    out.reserve(data_offset);
    out.append("GGUF", 4);
    PutU32(&out, kGgufVersion);
    PutU64(&out, tensors.size());
    PutU64(&out, metadata.size());
    metadata.AppendEncoded(&out);
    for (size_t i = 0; i < tensors.size(); ++i) {
      const GgufTensorSpec& t = tensors[i];
      PutString(&out, t.name);
      PutU32(&out, static_cast<uint32_t>(t.shape.size()));
      for (size_t d = t.shape.size(); d-- > 0;) PutU64(&out, t.shape[d]);  // ne[]: innermost first
      PutU32(&out, t.ggml_type);
      PutU64(&out, offsets[i] - data_offset);
    }
    return out;
  }
};

GgufFileWriter::GgufFileWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GgufFileWriter::~GgufFileWriter() = default;

uint64_t GgufFileWriter::tensor_offset(size_t index) const { return impl_->offsets[index]; }
uint64_t GgufFileWriter::data_offset() const { return impl_->data_offset; }
uint64_t GgufFileWriter::file_size() const { return impl_->file_size; }
size_t GgufFileWriter::num_tensors() const { return impl_->tensors.size(); }

absl::StatusOr<std::unique_ptr<GgufFileWriter>> GgufFileWriter::Create(
    const std::string& destination, GgufMetadata metadata, std::vector<GgufTensorSpec> tensors,
    uint64_t alignment, bool overwrite) {
  const std::string where = format::EscapeInvalidUtf8(destination);
  if (absl::Status s = CheckGgufAlignment(alignment); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", s.message()));
  }
  metadata.AddUint32("general.alignment", static_cast<uint32_t>(alignment));
  auto impl = std::make_unique<Impl>();
  uint64_t infos = 0;
  absl::flat_hash_set<std::string> names;
  for (const GgufTensorSpec& t : tensors) {
    const auto bad = [&](absl::string_view what) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": tensor '",
                                                     format::EscapeInvalidUtf8(t.name), "': ", what));
    };
    if (t.name.empty() || t.name.size() > kGgmlMaxNameBytes) {
      return bad(absl::StrCat("a name of ", t.name.size(), " bytes; ggml takes 1 to ",
                              kGgmlMaxNameBytes));
    }
    if (!names.insert(t.name).second) return bad("given twice");
    if (t.shape.empty() || t.shape.size() > kGgmlMaxDims) {
      return bad(absl::StrCat("rank ", t.shape.size(), "; ggml takes 1 to ", kGgmlMaxDims));
    }
    const converter::GgmlBlockShape block = converter::GgmlBlockShapeOf(t.ggml_type);
    if (block.elements == 0) return bad(absl::StrCat("ggml type ", t.ggml_type, " is unknown"));
    if (t.shape.back() % block.elements != 0) {
      return bad(absl::StrCat("row length ", t.shape.back(), " is not whole ",
                              converter::GgmlTypeName(t.ggml_type), " blocks"));
    }
    absl::StatusOr<uint64_t> elements = format::ElementCount(t.shape);
    if (!elements.ok() || *elements / block.elements > UINT64_MAX / block.bytes ||
        *elements / block.elements * block.bytes != t.nbytes) {
      return bad(absl::StrCat("nbytes ", t.nbytes, " is not the size of its shape"));
    }
    infos += 8 + t.name.size() + 4 + 8 * t.shape.size() + 4 + 8;
  }
  impl->destination = destination;
  impl->alignment = alignment;
  impl->overwrite = overwrite;
  impl->data_offset = AlignUp(kHeaderBytes + metadata.EncodedSize() + infos, alignment);
  uint64_t cursor = impl->data_offset;
  impl->offsets.reserve(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (i > 0) cursor = AlignUp(cursor, alignment);
    impl->offsets.push_back(cursor);
    cursor += tensors[i].nbytes;
  }
  impl->file_size = cursor;
  impl->written.assign(tensors.size(), 0);
  impl->metadata = std::move(metadata);
  impl->tensors = std::move(tensors);

  struct stat st;
  if (!overwrite && ::lstat(destination.c_str(), &st) == 0) {
    return absl::AlreadyExistsError(
        absl::StrCat(where, ": already exists (pass --force to overwrite)"));
  }
  ZCPACK_ASSIGN_OR_RETURN(format::TempFile temp, format::TempFile::Create(destination));
  impl->temp.emplace(std::move(temp));
  return std::unique_ptr<GgufFileWriter>(new GgufFileWriter(std::move(impl)));
}

absl::Status GgufFileWriter::SetUint64(absl::string_view key, uint64_t value) {
  // Only a key planned as a uint64: the encoded size, and so every offset,
  // stays as planned.
  if (!impl_->metadata.ReplaceUint64(key, value)) {
    return absl::InvalidArgumentError(
        absl::StrCat("metadata key '", key, "' was not planned as a uint64"));
  }
  return absl::OkStatus();
}

absl::Status GgufFileWriter::Append(size_t index, std::span<const uint8_t> bytes) {
  Impl& w = *impl_;
  const GgufTensorSpec& t = w.tensors[index];
  if (bytes.size() > t.nbytes - w.written[index]) {
    return absl::InvalidArgumentError(absl::StrCat(format::EscapeInvalidUtf8(w.destination),
                                                   ": tensor '", t.name, "' given more than its ",
                                                   t.nbytes, " bytes"));
  }
  ZCPACK_RETURN_IF_ERROR(format::WriteAt(w.temp->fd(), w.offsets[index] + w.written[index], bytes,
                                         w.temp->path()));
  w.written[index] += bytes.size();
  return absl::OkStatus();
}

absl::Status GgufFileWriter::Finish() {
  Impl& w = *impl_;
  for (size_t i = 0; i < w.tensors.size(); ++i) {
    if (w.written[i] != w.tensors[i].nbytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          format::EscapeInvalidUtf8(w.destination), ": tensor '", w.tensors[i].name, "' got ",
          w.written[i], " of its ", w.tensors[i].nbytes, " bytes"));
    }
  }
  const std::string header = w.EncodeHeader();
  const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(header.data()),
                                       header.size());
  ZCPACK_RETURN_IF_ERROR(format::WriteAt(w.temp->fd(), 0, bytes, w.temp->path()));
  if (::ftruncate(w.temp->fd(), static_cast<off_t>(w.file_size)) != 0) {
    return format::ErrnoError(errno, w.temp->path(), "ftruncate");
  }
  return w.temp->Install(w.overwrite);
}

}  // namespace zcpack::exporter

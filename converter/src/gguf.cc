#include "zcpack/converter/gguf.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "zcpack/converter/architecture.h"
#include "zcpack/converter/source_model.h"
#include "zcpack/format/coding.h"
#include "zcpack/format/dtype.h"
#include "zcpack/format/status_context.h"
#include "zcpack/format/utf8.h"
#include "zcpack/status_macros.h"

namespace zcpack::converter {
namespace {

constexpr uint64_t kMaxSignedDimension = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
// Smallest possible encodings, used to reject counts the remaining bytes
// cannot hold before anything is allocated for them.
constexpr uint64_t kMinKeyValueBytes = 8 + 4 + 1;          // empty key, type, u8 value
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 4 + 8;    // empty name, n_dims 0, type, offset

absl::string_view View(const std::string& s) { return absl::string_view(s.data(), s.size()); }

// Byte size of one encoded element; 8 for strings (their length field); 0 for
// arrays and unknown types.
uint64_t EncodedSize(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kBool: return 1;
    case GgufValueType::kUint16:
    case GgufValueType::kInt16: return 2;
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kFloat32: return 4;
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
    case GgufValueType::kFloat64:
    case GgufValueType::kString: return 8;
    case GgufValueType::kArray: return 0;
  }
  return 0;
}

bool IsUnsignedType(GgufValueType t) {
  return t == GgufValueType::kUint8 || t == GgufValueType::kUint16 ||
         t == GgufValueType::kUint32 || t == GgufValueType::kUint64;
}
bool IsSignedType(GgufValueType t) {
  return t == GgufValueType::kInt8 || t == GgufValueType::kInt16 ||
         t == GgufValueType::kInt32 || t == GgufValueType::kInt64;
}

// The container dtype of a ggml type whose blocks a container holds as they
// are; DTYPE_UNSPECIFIED for the others.
format::DType DTypeOfGgmlType(uint32_t type) {
  switch (type) {
    case kGgmlTypeF32: return format::DTYPE_F32;
    case kGgmlTypeF16: return format::DTYPE_F16;
    case kGgmlTypeBF16: return format::DTYPE_BF16;
    case kGgmlTypeQ4_0: return format::DTYPE_Q4_0;
    case kGgmlTypeQ4_1: return format::DTYPE_Q4_1;
    case kGgmlTypeQ5_0: return format::DTYPE_Q5_0;
    case kGgmlTypeQ5_1: return format::DTYPE_Q5_1;
    case kGgmlTypeQ8_0: return format::DTYPE_Q8_0;
    case kGgmlTypeQ4_K: return format::DTYPE_Q4_K;
    case kGgmlTypeQ5_K: return format::DTYPE_Q5_K;
    case kGgmlTypeQ6_K: return format::DTYPE_Q6_K;
    default: return format::DTYPE_UNSPECIFIED;
  }
}

std::string ShapeString(std::span<const uint64_t> shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

// Sequential little-endian reads over the file bytes. Every read checks the
// remaining length first; `context_` names what is being read for messages.
class GgufReader {
 public:
  GgufReader(std::span<const uint8_t> bytes, absl::string_view file) : bytes_(bytes), file_(file) {}

  uint64_t position() const { return pos_; }
  uint64_t remaining() const { return bytes_.size() - pos_; }
  absl::string_view file() const { return file_; }
  void set_context(std::string context) { context_ = std::move(context); }

  absl::Status Truncated(uint64_t need, absl::string_view what) const {
    return absl::DataLossError(absl::StrCat(file_, ": truncated: ", what, context_, " needs ",
                                            need, " bytes at offset ", pos_, ", the file is ",
                                            bytes_.size(), " bytes"));
  }

  absl::StatusOr<uint64_t> Unsigned(uint64_t width, absl::string_view what) {
    if (!format::ByteRangeInBounds(pos_, width, bytes_.size())) return Truncated(width, what);
    const uint8_t* p = bytes_.data() + pos_;
    pos_ += width;
    switch (width) {
      case 1: return p[0];
      case 2: return format::DecodeFixed16(p);
      case 4: return format::DecodeFixed32(p);
      default: return format::DecodeFixed64(p);
    }
  }
  absl::StatusOr<uint32_t> U32(absl::string_view what) {
    ZCPACK_ASSIGN_OR_RETURN(const uint64_t v, Unsigned(4, what));
    return static_cast<uint32_t>(v);
  }
  absl::StatusOr<uint64_t> U64(absl::string_view what) { return Unsigned(8, what); }

  // A u64 length followed by that many bytes, as a view into the file.
  absl::StatusOr<absl::string_view> StringView(absl::string_view what, uint64_t max_bytes) {
    ZCPACK_ASSIGN_OR_RETURN(const uint64_t length, U64(what));
    if (length > max_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(file_, ": ", what, context_, " at offset ",
                                                       pos_ - 8, " is ", length,
                                                       " bytes, limit ", max_bytes));
    }
    if (!format::ByteRangeInBounds(pos_, length, bytes_.size())) return Truncated(length, what);
    const absl::string_view s(reinterpret_cast<const char*>(bytes_.data() + pos_), length);
    pos_ += length;
    return s;
  }
  // The same, copied.
  absl::StatusOr<std::string> String(absl::string_view what, uint64_t max_bytes) {
    ZCPACK_ASSIGN_OR_RETURN(const absl::string_view s, StringView(what, max_bytes));
    return std::string(s);
  }

  // The `length` bytes from position() on, which the caller has checked lie
  // inside the file; moves past them.
  std::span<const uint8_t> Take(uint64_t length) {
    const std::span<const uint8_t> taken = bytes_.subspan(pos_, length);
    pos_ += length;
    return taken;
  }
  // The bytes from `begin` (a position already read past) to position().
  std::span<const uint8_t> Since(uint64_t begin) const {
    return bytes_.subspan(begin, pos_ - begin);
  }

 private:
  std::span<const uint8_t> bytes_;
  absl::string_view file_;
  uint64_t pos_ = 0;
  std::string context_;
};

int64_t SignExtend(uint64_t v, uint64_t width) {
  const unsigned shift = static_cast<unsigned>(64 - 8 * width);
  return static_cast<int64_t>(v << shift) >> shift;
}

absl::StatusOr<GgufValueType> ReadType(GgufReader& r, absl::string_view what) {
  ZCPACK_ASSIGN_OR_RETURN(const uint32_t raw, r.U32(what));
  if (raw > static_cast<uint32_t>(GgufValueType::kFloat64)) {
    return absl::DataLossError(
        absl::StrCat(r.file(), ": ", what, " at offset ", r.position() - 4, " is ", raw,
                     ", not a GGUF value type"));
  }
  return static_cast<GgufValueType>(raw);
}

absl::Status CheckBool(GgufReader& r, uint64_t v) {
  if (v > 1) {
    return absl::DataLossError(absl::StrCat(r.file(), ": bool at offset ", r.position() - 1,
                                            " is ", v, ", expected 0 or 1"));
  }
  return absl::OkStatus();
}

// One scalar of `type` (not kArray), widened.
absl::StatusOr<GgufValue::Data> ReadScalar(GgufReader& r, GgufValueType type,
                                           const GgufLimits& limits) {
  const uint64_t width = EncodedSize(type);
  if (type == GgufValueType::kString) {
    ZCPACK_ASSIGN_OR_RETURN(std::string s, r.String("string value", limits.max_string_bytes));
    return GgufValue::Data(std::move(s));
  }
  ZCPACK_ASSIGN_OR_RETURN(const uint64_t raw, r.Unsigned(width, "value"));
  if (IsUnsignedType(type)) return GgufValue::Data(raw);
  if (IsSignedType(type)) return GgufValue::Data(SignExtend(raw, width));
  if (type == GgufValueType::kFloat32) {
    return GgufValue::Data(double{std::bit_cast<float>(static_cast<uint32_t>(raw))});
  }
  if (type == GgufValueType::kFloat64) return GgufValue::Data(std::bit_cast<double>(raw));
  ZCPACK_RETURN_IF_ERROR(CheckBool(r, raw));  // kBool
  return GgufValue::Data(raw == 1);
}

// An array's elements, checked in place and kept as a view: nothing is
// allocated for them, whatever count the file declares. The count is checked
// against the bytes left (at the smallest encoding of an element) before any
// element is read.
absl::StatusOr<GgufArray> ReadArray(GgufReader& r, GgufValueType element_type,
                                    const GgufLimits& limits) {
  if (element_type == GgufValueType::kArray) {
    return absl::UnimplementedError(absl::StrCat(r.file(), ": nested arrays are not supported",
                                                 " (at offset ", r.position() - 4, ")"));
  }
  ZCPACK_ASSIGN_OR_RETURN(const uint64_t count, r.U64("array length"));
  if (count > limits.max_array_elements) {
    return absl::ResourceExhaustedError(absl::StrCat(r.file(), ": array of ", count,
                                                     " elements at offset ", r.position() - 8,
                                                     " exceeds the limit of ",
                                                     limits.max_array_elements));
  }
  const uint64_t width = EncodedSize(element_type);  // a string's length field
  if (count > r.remaining() / width) {
    return absl::DataLossError(absl::StrCat(r.file(), ": array of ", count, " ",
                                            GgufValueTypeName(element_type),
                                            " values at offset ", r.position() - 8,
                                            " runs past the end of the file"));
  }
  const uint64_t begin = r.position();
  if (element_type == GgufValueType::kString) {
    for (uint64_t i = 0; i < count; ++i) {
      ZCPACK_RETURN_IF_ERROR(r.StringView("array string", limits.max_string_bytes).status());
    }
  } else if (element_type == GgufValueType::kBool) {
    for (uint64_t i = 0; i < count; ++i) {
      ZCPACK_ASSIGN_OR_RETURN(const uint64_t raw, r.Unsigned(1, "array element"));
      ZCPACK_RETURN_IF_ERROR(CheckBool(r, raw));
    }
  } else {
    (void)r.Take(count * width);  // count <= remaining / width: inside the file
  }
  return GgufArray(element_type, count, r.Since(begin));
}

absl::Status ReadKeyValues(GgufReader& r, uint64_t count, const GgufLimits& limits,
                           std::vector<GgufKeyValue>* out) {
  absl::flat_hash_set<std::string> seen;
  out->reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    r.set_context(absl::StrCat(" (metadata entry ", i, ")"));
    GgufKeyValue kv;
    ZCPACK_ASSIGN_OR_RETURN(kv.key, r.String("key", limits.max_name_bytes));
    r.set_context(absl::StrCat(" (metadata key '", View(kv.key), "')"));
    if (!seen.insert(kv.key).second) {
      return absl::DataLossError(
          absl::StrCat(r.file(), ": metadata key '", View(kv.key), "' appears twice"));
    }
    ZCPACK_ASSIGN_OR_RETURN(kv.value.type, ReadType(r, "value type"));
    if (kv.value.type == GgufValueType::kArray) {
      ZCPACK_ASSIGN_OR_RETURN(kv.value.element_type, ReadType(r, "array element type"));
      auto array = ReadArray(r, kv.value.element_type, limits);
      if (!array.ok()) {
        return absl::Status(array.status().code(),
                            absl::StrCat(array.status().message(), " (metadata key '",
                                         View(kv.key), "')"));
      }
      kv.value.data = *array;
    } else {
      ZCPACK_ASSIGN_OR_RETURN(kv.value.data, ReadScalar(r, kv.value.type, limits));
    }
    out->push_back(std::move(kv));
  }
  return absl::OkStatus();
}

absl::Status ReadTensorInfos(GgufReader& r, uint64_t count, const GgufLimits& limits,
                             std::vector<GgufTensorInfo>* out) {
  absl::flat_hash_set<std::string> seen;
  out->reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    r.set_context(absl::StrCat(" (tensor info ", i, ")"));
    GgufTensorInfo info;
    ZCPACK_ASSIGN_OR_RETURN(info.name, r.String("tensor name", limits.max_name_bytes));
    r.set_context(absl::StrCat(" (tensor '", View(info.name), "')"));
    const auto defect = [&](absl::string_view what) {
      return format::AboutTensor(
          absl::DataLossError(absl::StrCat(r.file(), ": tensor '", View(info.name), "': ", what)),
          r.file(), info.name);
    };
    if (!seen.insert(info.name).second) return defect("name appears twice");
    ZCPACK_ASSIGN_OR_RETURN(const uint32_t n_dims, r.U32("n_dims"));
    if (n_dims > limits.max_dims) {
      return format::AboutTensor(
          absl::ResourceExhaustedError(absl::StrCat(r.file(), ": tensor '", View(info.name),
                                                    "' has ", n_dims, " dimensions, limit ",
                                                    limits.max_dims)),
          r.file(), info.name);
    }
    info.shape.resize(n_dims);
    for (uint32_t d = 0; d < n_dims; ++d) {
      ZCPACK_ASSIGN_OR_RETURN(const uint64_t ne, r.U64("dimension"));
      if (ne > kMaxSignedDimension) {
        return defect(absl::StrCat("dimension ", d, " is ", ne, ", beyond int64"));
      }
      info.shape[n_dims - 1 - d] = ne;  // ne[] is innermost first.
    }
    ZCPACK_ASSIGN_OR_RETURN(info.ggml_type, r.U32("tensor type"));
    const GgmlBlockShape block = GgmlBlockShapeOf(info.ggml_type);
    if (block.elements == 0) {
      return format::AboutTensor(
          absl::UnimplementedError(absl::StrCat(r.file(), ": tensor '", View(info.name),
                                                "' has ggml type ", GgmlTypeName(info.ggml_type),
                                                " (", info.ggml_type,
                                                "), whose block size zcpack does not know")),
          r.file(), info.name);
    }
    info.dtype = DTypeOfGgmlType(info.ggml_type);
    // ggml stores a tensor row by row, each row whole blocks.
    if (!info.shape.empty() && info.shape.back() % block.elements != 0) {
      return defect(absl::StrCat("row length ", info.shape.back(), " is not a multiple of the ",
                                 GgmlTypeName(info.ggml_type), " block size ", block.elements));
    }
    auto elements = format::ElementCount(info.shape);
    if (!elements.ok() || *elements / block.elements > UINT64_MAX / block.bytes) {
      return defect(absl::StrCat("shape ", ShapeString(info.shape), " overflows 64-bit sizes"));
    }
    info.nbytes = *elements / block.elements * block.bytes;
    ZCPACK_ASSIGN_OR_RETURN(info.offset, r.U64("tensor offset"));
    out->push_back(std::move(info));
  }
  r.set_context("");
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> Alignment(const GgufFile& gguf, absl::string_view file) {
  const GgufValue* value = gguf.FindMetadata("general.alignment");
  if (value == nullptr) return kGgufDefaultAlignment;
  const std::optional<uint64_t> alignment = value->AsUnsigned();
  if (!alignment.has_value() || *alignment == 0 || *alignment > UINT32_MAX ||
      !std::has_single_bit(*alignment)) {
    return absl::DataLossError(absl::StrCat(
        file, ": general.alignment must be a power of two that fits in uint32 (type ",
        GgufValueTypeName(value->type), ", value ",
        alignment.has_value() ? absl::StrCat(*alignment) : std::string("n/a"), ")"));
  }
  return *alignment;
}

absl::Status PlaceTensorData(GgufFile& gguf, uint64_t file_size, absl::string_view file) {
  if (gguf.tensors.empty()) return absl::OkStatus();
  if (gguf.data_offset > file_size) {
    return absl::DataLossError(absl::StrCat(file, ": data section starts at ", gguf.data_offset,
                                            ", past the end of the ", file_size, "-byte file"));
  }
  const uint64_t data_size = file_size - gguf.data_offset;
  for (GgufTensorInfo& info : gguf.tensors) {
    const uint64_t relative = info.offset;
    if (relative % gguf.alignment != 0) {
      return format::AboutTensor(
          absl::DataLossError(absl::StrCat(file, ": tensor '", View(info.name), "' offset ",
                                           relative, " is not a multiple of the alignment ",
                                           gguf.alignment)),
          file, info.name);
    }
    if (!format::ByteRangeInBounds(relative, info.nbytes, data_size)) {
      return format::AboutTensor(
          absl::DataLossError(absl::StrCat(file, ": tensor '", View(info.name), "' data [",
                                           relative, ", +", info.nbytes,
                                           ") lies outside the data section of ", data_size,
                                           " bytes")),
          file, info.name);
    }
    info.offset = gguf.data_offset + relative;
  }
  std::vector<const GgufTensorInfo*> by_offset;
  by_offset.reserve(gguf.tensors.size());
  for (const GgufTensorInfo& info : gguf.tensors) {
    if (info.nbytes != 0) by_offset.push_back(&info);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GgufTensorInfo* a, const GgufTensorInfo* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const GgufTensorInfo& prev = *by_offset[i - 1];
    const GgufTensorInfo& cur = *by_offset[i];
    if (cur.offset < prev.offset + prev.nbytes) {
      return absl::DataLossError(absl::StrCat(file, ": tensors '", View(prev.name), "' and '",
                                              View(cur.name), "' overlap"));
    }
  }
  return absl::OkStatus();
}

// Typed metadata lookups for GgufModelInfo().
class MetadataView {
 public:
  MetadataView(const GgufFile& gguf, absl::string_view file) : gguf_(gguf), file_(file) {}

  absl::StatusOr<std::optional<uint64_t>> OptionalUnsigned(absl::string_view key) const {
    const GgufValue* value = gguf_.FindMetadata(key);
    if (value == nullptr) return std::optional<uint64_t>();
    const std::optional<uint64_t> v = value->AsUnsigned();
    if (!v.has_value()) return WrongType(key, *value, "a non-negative integer");
    return v;
  }
  absl::StatusOr<uint32_t> Uint32(absl::string_view key, std::optional<uint32_t> fallback) const {
    ZCPACK_ASSIGN_OR_RETURN(const std::optional<uint64_t> v, OptionalUnsigned(key));
    if (!v.has_value()) {
      if (fallback.has_value()) return *fallback;
      return absl::DataLossError(absl::StrCat(file_, ": required metadata key '", key,
                                              "' is missing"));
    }
    if (*v > UINT32_MAX) {
      return absl::DataLossError(absl::StrCat(file_, ": metadata key '", key, "' is ", *v,
                                              ", beyond uint32"));
    }
    return static_cast<uint32_t>(*v);
  }
  absl::StatusOr<double> Double(absl::string_view key, std::optional<double> fallback) const {
    const GgufValue* value = gguf_.FindMetadata(key);
    if (value == nullptr) {
      if (fallback.has_value()) return *fallback;
      return absl::DataLossError(absl::StrCat(file_, ": required metadata key '", key,
                                              "' is missing"));
    }
    const std::optional<double> v = value->AsDouble();
    if (!v.has_value()) return WrongType(key, *value, "a number");
    return *v;
  }
  absl::Status WrongType(absl::string_view key, const GgufValue& value,
                         absl::string_view expected) const {
    return absl::DataLossError(absl::StrCat(file_, ": metadata key '", key, "' has type ",
                                            GgufValueTypeName(value.type), ", expected ",
                                            expected));
  }

 private:
  const GgufFile& gguf_;
  absl::string_view file_;
};

// Writes tokenizer metadata as JSON text in small pieces, straight from the
// values (arrays from their views into the file), so the text is never held
// whole. Deterministic: the same values give the same bytes.
class TokenizerJsonWriter {
 public:
  explicit TokenizerJsonWriter(absl::FunctionRef<void(absl::string_view)> emit) : emit_(emit) {}

  void Object(std::span<const GgufKeyValue* const> sorted_keys) {
    emit_("{");
    bool first = true;
    for (const GgufKeyValue* kv : sorted_keys) {
      if (!first) emit_(",");
      first = false;
      String(kv->key);
      emit_(":");
      Value(kv->value);
    }
    emit_("}");
  }

 private:
  void Value(const GgufValue& value) {
    if (const GgufArray* array = value.AsArray()) {
      const bool as_float = array->element_type() == GgufValueType::kFloat32;
      emit_("[");
      bool first = true;
      array->ForEach([&](const GgufElement& element) {
        if (!first) emit_(",");
        first = false;
        Element(element, as_float);
      });
      emit_("]");
      return;
    }
    std::visit(
        [&](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, std::string>) {
            String(v);
          } else if constexpr (!std::is_same_v<T, GgufArray>) {
            Element(GgufElement(v), value.type == GgufValueType::kFloat32);
          }
        },
        value.data);
  }

  // `as_float`: a double that was a float32 in the file, written in float32's
  // shortest form ("0.1", not "0.10000000149011612").
  void Element(const GgufElement& element, bool as_float) {
    char buffer[32];
    std::to_chars_result result{buffer, std::errc()};
    if (const auto* u = std::get_if<uint64_t>(&element)) {
      result = std::to_chars(buffer, buffer + sizeof(buffer), *u);
    } else if (const auto* i = std::get_if<int64_t>(&element)) {
      result = std::to_chars(buffer, buffer + sizeof(buffer), *i);
    } else if (const auto* d = std::get_if<double>(&element)) {
      if (!std::isfinite(*d)) return emit_("null");  // JSON has no NaN or infinity
      // Shortest form writes -0, which JSON readers take as the integer 0:
      // keep the sign, so that the value reads back as itself (an export to
      // GGUF writes these keys again).
      if (*d == 0 && std::signbit(*d)) return emit_("-0.0");
      result = as_float ? std::to_chars(buffer, buffer + sizeof(buffer), static_cast<float>(*d))
                        : std::to_chars(buffer, buffer + sizeof(buffer), *d);
    } else if (const auto* b = std::get_if<bool>(&element)) {
      return emit_(*b ? "true" : "false");
    } else {
      return String(std::get<absl::string_view>(element));
    }
    emit_(absl::string_view(buffer, static_cast<size_t>(result.ptr - buffer)));
  }

  // A JSON string: quotes, backslashes and control characters escaped, bytes
  // that are not UTF-8 replaced by U+FFFD (copied only then).
  void String(absl::string_view text) {
    std::string replaced;
    if (!format::IsValidUtf8(text)) {
      replaced = format::ReplaceInvalidUtf8(text);
      text = replaced;
    }
    emit_("\"");
    size_t plain = 0;  // start of the run not yet emitted
    for (size_t i = 0; i < text.size(); ++i) {
      const unsigned char c = static_cast<unsigned char>(text[i]);
      if (c >= 0x20 && c != '"' && c != '\\') continue;
      emit_(text.substr(plain, i - plain));
      plain = i + 1;
      switch (c) {
        case '"': emit_("\\\""); break;
        case '\\': emit_("\\\\"); break;
        case '\b': emit_("\\b"); break;
        case '\f': emit_("\\f"); break;
        case '\n': emit_("\\n"); break;
        case '\r': emit_("\\r"); break;
        case '\t': emit_("\\t"); break;
        default: {
          static constexpr char kHex[] = "0123456789abcdef";
          const char escape[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
          emit_(absl::string_view(escape, 6));
        }
      }
    }
    emit_(text.substr(plain));
    emit_("\"");
  }

  absl::FunctionRef<void(absl::string_view)> emit_;
};

}  // namespace

absl::string_view GgmlTypeName(uint32_t type) {
  switch (type) {
    case 0: return "F32";
    case 1: return "F16";
    case 2: return "Q4_0";
    case 3: return "Q4_1";
    case 6: return "Q5_0";
    case 7: return "Q5_1";
    case 8: return "Q8_0";
    case 9: return "Q8_1";
    case 10: return "Q2_K";
    case 11: return "Q3_K";
    case 12: return "Q4_K";
    case 13: return "Q5_K";
    case 14: return "Q6_K";
    case 15: return "Q8_K";
    case 24: return "I8";
    case 25: return "I16";
    case 26: return "I32";
    case 27: return "I64";
    case 28: return "F64";
    case 30: return "BF16";
    default: return "unknown";
  }
}

GgmlBlockShape GgmlBlockShapeOf(uint32_t type) {
  switch (type) {
    case 0: return {1, 4};     // F32
    case 1: return {1, 2};     // F16
    case 2: return {32, 18};   // Q4_0
    case 3: return {32, 20};   // Q4_1
    case 6: return {32, 22};   // Q5_0
    case 7: return {32, 24};   // Q5_1
    case 8: return {32, 34};   // Q8_0
    case 9: return {32, 36};   // Q8_1
    case 10: return {256, 84};   // Q2_K
    case 11: return {256, 110};  // Q3_K
    case 12: return {256, 144};  // Q4_K
    case 13: return {256, 176};  // Q5_K
    case 14: return {256, 210};  // Q6_K
    case 15: return {256, 292};  // Q8_K
    case 24: return {1, 1};    // I8
    case 25: return {1, 2};    // I16
    case 26: return {1, 4};    // I32
    case 27: return {1, 8};    // I64
    case 28: return {1, 8};    // F64
    case 30: return {1, 2};    // BF16
    default: return {0, 0};
  }
}


absl::string_view GgufValueTypeName(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8: return "uint8";
    case GgufValueType::kInt8: return "int8";
    case GgufValueType::kUint16: return "uint16";
    case GgufValueType::kInt16: return "int16";
    case GgufValueType::kUint32: return "uint32";
    case GgufValueType::kInt32: return "int32";
    case GgufValueType::kFloat32: return "float32";
    case GgufValueType::kBool: return "bool";
    case GgufValueType::kString: return "string";
    case GgufValueType::kArray: return "array";
    case GgufValueType::kUint64: return "uint64";
    case GgufValueType::kInt64: return "int64";
    case GgufValueType::kFloat64: return "float64";
  }
  return "unknown";
}

std::optional<uint64_t> GgufValue::AsUnsigned() const {
  if (const auto* u = std::get_if<uint64_t>(&data)) return *u;
  if (const auto* i = std::get_if<int64_t>(&data); i != nullptr && *i >= 0) {
    return static_cast<uint64_t>(*i);
  }
  return std::nullopt;
}

std::optional<double> GgufValue::AsDouble() const {
  if (const auto* u = std::get_if<uint64_t>(&data)) return static_cast<double>(*u);
  if (const auto* i = std::get_if<int64_t>(&data)) return static_cast<double>(*i);
  if (const auto* d = std::get_if<double>(&data)) return *d;
  return std::nullopt;
}

const std::string* GgufValue::AsString() const { return std::get_if<std::string>(&data); }

const GgufArray* GgufValue::AsArray() const { return std::get_if<GgufArray>(&data); }

uint64_t GgufValue::ArraySize() const {
  const GgufArray* array = AsArray();
  return array == nullptr ? 0 : array->size();
}

void GgufArray::ForEach(absl::FunctionRef<void(const GgufElement&)> visit) const {
  const uint64_t width = EncodedSize(element_type_);
  if (width == 0) return;
  const uint8_t* p = encoded_.data();
  uint64_t left = encoded_.size();
  for (uint64_t i = 0; i < size_; ++i) {
    if (left < width) return;
    uint64_t raw = 0;
    switch (width) {
      case 1: raw = p[0]; break;
      case 2: raw = format::DecodeFixed16(p); break;
      case 4: raw = format::DecodeFixed32(p); break;
      default: raw = format::DecodeFixed64(p); break;
    }
    p += width;
    left -= width;
    if (element_type_ == GgufValueType::kString) {
      if (raw > left) return;
      visit(GgufElement(absl::string_view(reinterpret_cast<const char*>(p), raw)));
      p += raw;
      left -= raw;
    } else if (IsUnsignedType(element_type_)) {
      visit(GgufElement(raw));
    } else if (IsSignedType(element_type_)) {
      visit(GgufElement(SignExtend(raw, width)));
    } else if (element_type_ == GgufValueType::kFloat32) {
      visit(GgufElement(double{std::bit_cast<float>(static_cast<uint32_t>(raw))}));
    } else if (element_type_ == GgufValueType::kFloat64) {
      visit(GgufElement(std::bit_cast<double>(raw)));
    } else {
      visit(GgufElement(raw == 1));  // kBool
    }
  }
}

const GgufValue* GgufFile::FindMetadata(absl::string_view key) const {
  for (const GgufKeyValue& kv : metadata) {
    if (kv.key == key) return &kv.value;
  }
  return nullptr;
}

const GgufTensorInfo* GgufFile::FindTensor(absl::string_view name) const {
  for (const GgufTensorInfo& info : tensors) {
    if (info.name == name) return &info;
  }
  return nullptr;
}

absl::StatusOr<GgufFile> ParseGguf(std::span<const uint8_t> file_bytes, absl::string_view file,
                                   const GgufLimits& limits) {
  const uint64_t size = file_bytes.size();
  if (size < sizeof(kGgufMagic)) {
    // A prefix of the magic is a truncated GGUF file; anything else is not one.
    if (std::equal(file_bytes.begin(), file_bytes.end(), std::begin(kGgufMagic))) {
      return absl::DataLossError(
          absl::StrCat(file, ": truncated: ", size, " bytes, shorter than the GGUF magic"));
    }
    return absl::InvalidArgumentError(absl::StrCat(file, ": not a GGUF file (bad magic)"));
  }
  if (!std::equal(std::begin(kGgufMagic), std::end(kGgufMagic), file_bytes.begin())) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": not a GGUF file (bad magic)"));
  }
  GgufReader r(file_bytes, file);
  ZCPACK_ASSIGN_OR_RETURN(const uint64_t magic_unused, r.Unsigned(4, "magic"));
  (void)magic_unused;

  GgufFile gguf;
  ZCPACK_ASSIGN_OR_RETURN(gguf.version, r.U32("version"));
  if (gguf.version < kGgufMinVersion || gguf.version > kGgufMaxVersion) {
    if ((gguf.version & 0xffffu) == 0 && gguf.version != 0) {
      return absl::UnimplementedError(
          absl::StrCat(file, ": big-endian GGUF files are not supported"));
    }
    return absl::UnimplementedError(absl::StrCat(file, ": GGUF version ", gguf.version,
                                                 "; this reader supports versions ",
                                                 kGgufMinVersion, " to ", kGgufMaxVersion));
  }
  ZCPACK_ASSIGN_OR_RETURN(const uint64_t tensor_count, r.U64("tensor count"));
  ZCPACK_ASSIGN_OR_RETURN(const uint64_t kv_count, r.U64("metadata count"));
  if (tensor_count > limits.max_tensors) {
    return absl::ResourceExhaustedError(absl::StrCat(file, ": ", tensor_count,
                                                     " tensors exceeds the limit of ",
                                                     limits.max_tensors));
  }
  if (kv_count > limits.max_kv_count) {
    return absl::ResourceExhaustedError(absl::StrCat(file, ": ", kv_count,
                                                     " metadata entries exceeds the limit of ",
                                                     limits.max_kv_count));
  }
  // Both counts together must fit in what is left, each entry at its smallest.
  if (kv_count > r.remaining() / kMinKeyValueBytes ||
      tensor_count > (r.remaining() - kv_count * kMinKeyValueBytes) / kMinTensorInfoBytes) {
    return absl::DataLossError(absl::StrCat(file, ": ", kv_count, " metadata entries and ",
                                            tensor_count, " tensor infos cannot fit in the ",
                                            r.remaining(), " bytes after the header"));
  }

  ZCPACK_RETURN_IF_ERROR(ReadKeyValues(r, kv_count, limits, &gguf.metadata));
  ZCPACK_RETURN_IF_ERROR(ReadTensorInfos(r, tensor_count, limits, &gguf.tensors));
  ZCPACK_ASSIGN_OR_RETURN(gguf.alignment, Alignment(gguf, file));
  // position() <= size < 2^64 - 2^32 for any real buffer, so this cannot wrap.
  const uint64_t pos = r.position();
  gguf.data_offset = pos + (gguf.alignment - pos % gguf.alignment) % gguf.alignment;
  ZCPACK_RETURN_IF_ERROR(PlaceTensorData(gguf, size, file));
  return gguf;
}

absl::StatusOr<format::ModelInfo> GgufModelInfo(const GgufFile& gguf, absl::string_view file) {
  const GgufValue* arch_value = gguf.FindMetadata("general.architecture");
  if (arch_value == nullptr || arch_value->AsString() == nullptr) {
    return absl::DataLossError(
        absl::StrCat(file, ": general.architecture is missing or not a string"));
  }
  const std::string& arch = *arch_value->AsString();
  if (arch != "llama") {
    return absl::UnimplementedError(absl::StrCat(file, ": GGUF architecture '", View(arch),
                                                 "'; zcpack reads llama GGUF files"));
  }
  const MetadataView meta(gguf, file);
  if (const GgufValue* scaling = gguf.FindMetadata("llama.rope.scaling.type")) {
    const std::string* type = scaling->AsString();
    if (type == nullptr || *type != "none") {
      return absl::UnimplementedError(absl::StrCat(
          file, ": RoPE scaling '", type != nullptr ? View(*type) : "?", "' is not supported"));
    }
  }
  if (gguf.FindTensor("rope_freqs.weight") != nullptr) {
    return absl::UnimplementedError(absl::StrCat(
        file, ": rope_freqs.weight (Llama 3 RoPE frequency scaling) is not supported"));
  }

  format::ModelInfo model;
  model.set_architecture("llama");
  model.set_rope_layout(format::ROPE_LAYOUT_INTERLEAVED);
  ZCPACK_ASSIGN_OR_RETURN(const uint32_t hidden, meta.Uint32("llama.embedding_length", {}));
  ZCPACK_ASSIGN_OR_RETURN(const uint32_t layers, meta.Uint32("llama.block_count", {}));
  ZCPACK_ASSIGN_OR_RETURN(const uint32_t heads, meta.Uint32("llama.attention.head_count", {}));
  ZCPACK_ASSIGN_OR_RETURN(const uint32_t kv_heads,
                          meta.Uint32("llama.attention.head_count_kv", heads));
  ZCPACK_ASSIGN_OR_RETURN(const uint32_t ffn, meta.Uint32("llama.feed_forward_length", {}));
  ZCPACK_ASSIGN_OR_RETURN(const uint32_t context, meta.Uint32("llama.context_length", 0u));
  ZCPACK_ASSIGN_OR_RETURN(const double theta, meta.Double("llama.rope.freq_base", 10000.0));
  ZCPACK_ASSIGN_OR_RETURN(const double eps,
                          meta.Double("llama.attention.layer_norm_rms_epsilon", {}));
  const uint32_t default_head_dim = heads == 0 ? 0 : hidden / heads;
  ZCPACK_ASSIGN_OR_RETURN(const uint32_t rope_dims,
                          meta.Uint32("llama.rope.dimension_count", default_head_dim));
  ZCPACK_ASSIGN_OR_RETURN(const uint32_t head_dim,
                          meta.Uint32("llama.attention.key_length", rope_dims));
  if (rope_dims != head_dim) {
    return absl::UnimplementedError(absl::StrCat(file, ": partial RoPE (rope.dimension_count ",
                                                 rope_dims, ", head dim ", head_dim,
                                                 ") is not supported"));
  }

  // Vocabulary: the explicit key, else the token list, else the embedding rows.
  ZCPACK_ASSIGN_OR_RETURN(const std::optional<uint64_t> vocab_key,
                          meta.OptionalUnsigned("llama.vocab_size"));
  uint64_t vocab = 0;
  const GgufValue* tokens = gguf.FindMetadata("tokenizer.ggml.tokens");
  const GgufTensorInfo* embedding = gguf.FindTensor("token_embd.weight");
  if (vocab_key.has_value()) {
    vocab = *vocab_key;
  } else if (tokens != nullptr && tokens->ArraySize() > 0) {
    vocab = tokens->ArraySize();
  } else if (embedding != nullptr && embedding->shape.size() == 2) {
    vocab = embedding->shape[0];
  } else {
    return absl::DataLossError(absl::StrCat(
        file, ": cannot tell the vocabulary size (no llama.vocab_size, no tokenizer.ggml.tokens,"
              " no 2-D token_embd.weight)"));
  }
  if (vocab > UINT32_MAX) {
    return absl::DataLossError(absl::StrCat(file, ": vocabulary of ", vocab, " tokens"));
  }

  ZCPACK_ASSIGN_OR_RETURN(const std::optional<uint64_t> bos,
                          meta.OptionalUnsigned("tokenizer.ggml.bos_token_id"));
  ZCPACK_ASSIGN_OR_RETURN(const std::optional<uint64_t> eos,
                          meta.OptionalUnsigned("tokenizer.ggml.eos_token_id"));
  const auto token_id = [](const std::optional<uint64_t>& id) {
    return id.has_value() && *id <= static_cast<uint64_t>(INT32_MAX) ? static_cast<int32_t>(*id)
                                                                     : -1;
  };

  model.set_hidden_size(hidden);
  model.set_num_layers(layers);
  model.set_num_heads(heads);
  model.set_num_kv_heads(kv_heads);
  model.set_head_dim(head_dim);
  model.set_intermediate_size(ffn);
  model.set_vocab_size(static_cast<uint32_t>(vocab));
  model.set_rope_theta(theta);
  model.set_rms_norm_eps(eps);
  model.set_max_position_embeddings(context);
  model.set_tied_embeddings(gguf.FindTensor("output.weight") == nullptr);
  model.set_attention_bias(gguf.FindTensor("blk.0.attn_q.bias") != nullptr);
  model.set_bos_token_id(token_id(bos));
  model.set_eos_token_id(token_id(eos));
  if (absl::Status valid = ValidateModelInfo(model); !valid.ok()) {
    return absl::DataLossError(absl::StrCat(file, ": ", valid.message()));
  }
  return model;
}

absl::StatusOr<std::optional<format::TokenizerBlob>> GgufTokenizerBlob(const GgufFile& gguf,
                                                                       absl::string_view file_name,
                                                                       int zstd_level) {
  std::vector<const GgufKeyValue*> keys;
  for (const GgufKeyValue& kv : gguf.metadata) {
    if (absl::StartsWith(kv.key, "tokenizer.")) keys.push_back(&kv);
  }
  if (keys.empty()) return std::optional<format::TokenizerBlob>();
  if (const GgufValue* model = gguf.FindMetadata("tokenizer.ggml.model")) {
    const std::string* name = model->AsString();
    if (name != nullptr && (*name == "none" || *name == "no_vocab")) {
      return std::optional<format::TokenizerBlob>();
    }
  }
  std::sort(keys.begin(), keys.end(),
            [](const GgufKeyValue* a, const GgufKeyValue* b) { return a->key < b->key; });
  const auto write_json = [&](absl::FunctionRef<void(absl::string_view)> emit) {
    TokenizerJsonWriter json(emit);
    json.Object(keys);
  };
  ZCPACK_ASSIGN_OR_RETURN(
      format::TokenizerBlob blob,
      MakeStreamedTokenizerBlob("gguf-metadata", file_name, write_json, zstd_level));
  return std::optional<format::TokenizerBlob>(std::move(blob));
}

}  // namespace zcpack::converter

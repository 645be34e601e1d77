#include "zcpack/converter/safetensors.h"

#include <algorithm>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "zcpack/format/coding.h"
#include "zcpack/format/dtype.h"
#include "zcpack/format/status_context.h"
#include "zcpack/status_macros.h"

namespace zcpack::converter {
namespace {

using Json = nlohmann::json;

constexpr uint64_t kLengthFieldBytes = 8;
constexpr absl::string_view kMetadataKey = "__metadata__";

struct DTypeInfo {
  absl::string_view name;
  uint64_t element_bytes;
  format::DType dtype;  // DTYPE_UNSPECIFIED: sized, but not a type zcpack converts.
};

// Every safetensors dtype with a whole-byte element size. Sub-byte types (F4,
// F6_*) are left out: their byte counts follow other rules.
constexpr DTypeInfo kDTypes[] = {
    {"F32", 4, format::DTYPE_F32},         {"F16", 2, format::DTYPE_F16},
    {"BF16", 2, format::DTYPE_BF16},       {"F64", 8, format::DTYPE_UNSPECIFIED},
    {"I64", 8, format::DTYPE_UNSPECIFIED}, {"U64", 8, format::DTYPE_UNSPECIFIED},
    {"I32", 4, format::DTYPE_UNSPECIFIED}, {"U32", 4, format::DTYPE_UNSPECIFIED},
    {"I16", 2, format::DTYPE_UNSPECIFIED}, {"U16", 2, format::DTYPE_UNSPECIFIED},
    {"I8", 1, format::DTYPE_UNSPECIFIED},  {"U8", 1, format::DTYPE_UNSPECIFIED},
    {"BOOL", 1, format::DTYPE_UNSPECIFIED}, {"F8_E4M3", 1, format::DTYPE_UNSPECIFIED},
    {"F8_E5M2", 1, format::DTYPE_UNSPECIFIED}, {"F8_E8M0", 1, format::DTYPE_UNSPECIFIED},
    {"C64", 8, format::DTYPE_UNSPECIFIED},
};

const DTypeInfo* FindDType(absl::string_view name) {
  for (const DTypeInfo& info : kDTypes) {
    if (info.name == name) return &info;
  }
  return nullptr;
}

absl::string_view View(const std::string& s) { return absl::string_view(s.data(), s.size()); }

std::string ShapeString(std::span<const uint64_t> shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

// One tensor's fields as the header gives them, before any check.
struct RawEntry {
  std::string name;
  std::optional<std::string> dtype;
  bool dtype_not_string = false;
  std::optional<std::vector<uint64_t>> shape;  // nullopt: missing or malformed
  std::optional<std::vector<uint64_t>> offsets;
  bool shape_seen = false;
  bool offsets_seen = false;
};

// HeaderSax: builds the tensor table straight from nlohmann's SAX events, so
// memory follows the table, not a DOM of the header (a 50 MB header used to
// cost 1.2 GB). Every count and length is bounded as it arrives: nesting
// depth, tensors, metadata entries, names, ranks. The first problem stops
// the parse and is kept in status().
class HeaderSax : public nlohmann::json_sax<Json> {
 public:
  HeaderSax(absl::string_view file, uint64_t data_offset, uint64_t data_size,
            const SafetensorsLimits& limits, SafetensorsHeader* out)
      : file_(file), data_offset_(data_offset), data_size_(data_size), limits_(limits), out_(out) {}

  const absl::Status& status() const { return status_; }

  bool null() override { return Scalar(Kind::kOther); }
  bool boolean(bool) override { return Scalar(Kind::kOther); }
  bool number_integer(number_integer_t) override { return Scalar(Kind::kOther); }
  bool number_unsigned(number_unsigned_t value) override {
    if (depth_ == 3 && array_ != nullptr) {
      const uint64_t limit = array_ == &shape_ ? limits_.max_rank : 2;
      if (array_->size() >= limit) {
        if (array_ == &shape_) {
          return Fail(absl::ResourceExhaustedError(absl::StrCat(
              file_, ": tensor '", View(entry_.name), "' has rank above the limit of ",
              limits_.max_rank)));
        }
        return Malformed("missing \"data_offsets\", or it is not [begin, end]");
      }
      array_->push_back(value);
      return true;
    }
    return Scalar(Kind::kOther);
  }
  bool number_float(number_float_t, const string_t&) override { return Scalar(Kind::kOther); }
  bool binary(binary_t&) override { return Scalar(Kind::kOther); }
  bool string(string_t& value) override {
    if (depth_ == 2 && in_metadata_) {
      out_->metadata.emplace_back(std::move(metadata_key_), std::move(value));
      return true;
    }
    if (depth_ == 2 && !in_metadata_ && field_ == Field::kDtype && !skipping_) {
      entry_.dtype = std::move(value);
      return true;
    }
    return Scalar(Kind::kOther);
  }

  bool start_object(std::size_t) override {
    if (!Enter()) return false;
    if (skipping_) return true;
    if (depth_ == 1) return true;  // the header itself
    if (depth_ == 2) {
      if (top_key_is_metadata_) {
        if (seen_metadata_) return Fail(absl::DataLossError(
            absl::StrCat(file_, ": header names '__metadata__' more than once")));
        seen_metadata_ = in_metadata_ = true;
        return true;
      }
      in_entry_ = true;
      return true;
    }
    return Scalar(Kind::kContainer);
  }
  bool end_object() override {
    --depth_;
    if (skipping_) {
      if (depth_ == skip_depth_) skipping_ = false;
      return true;
    }
    if (depth_ == 1 && in_metadata_) {
      in_metadata_ = false;
    } else if (depth_ == 1 && in_entry_) {
      in_entry_ = false;
      return FinishEntry();
    }
    return true;
  }
  bool start_array(std::size_t) override {
    if (!Enter()) return false;
    if (skipping_) return true;
    if (depth_ == 3 && in_entry_ && (field_ == Field::kShape || field_ == Field::kOffsets)) {
      array_ = field_ == Field::kShape ? &shape_ : &offsets_;
      array_->clear();
      (field_ == Field::kShape ? entry_.shape_seen : entry_.offsets_seen) = true;
      return true;
    }
    return Scalar(Kind::kContainer);
  }
  bool end_array() override {
    --depth_;
    if (skipping_) {
      if (depth_ == skip_depth_) skipping_ = false;
      return true;
    }
    if (depth_ == 2 && array_ != nullptr) {
      if (array_ == &shape_) entry_.shape = shape_; else entry_.offsets = offsets_;
      array_ = nullptr;
    }
    return true;
  }

  bool key(string_t& key) override {
    if (skipping_) return true;
    if (depth_ == 1) {
      top_key_is_metadata_ = key == kMetadataKey;
      if (top_key_is_metadata_) return true;
      if (key.size() > limits_.max_name_bytes) {
        return Fail(absl::ResourceExhaustedError(absl::StrCat(
            file_, ": tensor name of ", key.size(), " bytes exceeds the limit of ",
            limits_.max_name_bytes, " (name starts '", View(key.substr(0, 64)), "')")));
      }
      if (++tensor_count_ > limits_.max_tensors) {
        return Fail(absl::ResourceExhaustedError(absl::StrCat(
            file_, ": header lists more than ", limits_.max_tensors, " tensors, the limit")));
      }
      entry_ = RawEntry();
      entry_.name = std::move(key);
      return true;
    }
    if (depth_ == 2 && in_metadata_) {
      if (out_->metadata.size() >= limits_.max_metadata_entries) {
        return Fail(absl::ResourceExhaustedError(absl::StrCat(
            file_, ": __metadata__ has more than ", limits_.max_metadata_entries,
            " entries, the limit")));
      }
      metadata_key_ = std::move(key);
      return true;
    }
    if (depth_ == 2 && in_entry_) {
      field_ = key == "dtype"          ? Field::kDtype
               : key == "shape"        ? Field::kShape
               : key == "data_offsets" ? Field::kOffsets
                                       : Field::kOther;
    }
    return true;
  }

  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception&) override {
    if (status_.ok()) {
      status_ = absl::DataLossError(
          absl::StrCat(file_, ": header is not valid JSON (at byte ", position, " of the header)"));
    }
    return false;
  }

 private:
  enum class Field { kOther, kDtype, kShape, kOffsets };
  enum class Kind { kOther, kContainer };

  bool Fail(absl::Status status) {
    if (status_.ok()) status_ = std::move(status);
    return false;
  }
  bool Malformed(absl::string_view what) {
    return Fail(format::AboutTensor(
        absl::DataLossError(absl::StrCat(file_, ": tensor '", View(entry_.name), "': ", what)),
        file_, entry_.name));
  }

  // A container opens: bound the depth.
  bool Enter() {
    if (++depth_ > static_cast<int>(limits_.max_json_depth)) {
      return Fail(absl::ResourceExhaustedError(absl::StrCat(
          file_, ": header JSON nests deeper than ", limits_.max_json_depth, " levels, the limit")));
    }
    return true;
  }

  // A value (scalar, or a container that has just opened at depth_) that the
  // structure has no place for: an error where the format says what must be
  // there, else skipped (unknown fields of an entry are ignored).
  bool Scalar(Kind kind) {
    if (skipping_) return true;
    const int at = kind == Kind::kContainer ? depth_ - 1 : depth_;  // the level holding it
    if (at == 1) {
      if (top_key_is_metadata_) {
        return Fail(absl::DataLossError(absl::StrCat(file_, ": __metadata__ is not a JSON object")));
      }
      return Malformed("entry is not a JSON object");
    }
    if (at == 2 && in_metadata_) {
      return Fail(absl::DataLossError(absl::StrCat(file_, ": __metadata__ value of '",
                                                   View(metadata_key_), "' is not a string")));
    }
    if (at == 2 && in_entry_) {
      switch (field_) {
        case Field::kDtype:
          entry_.dtype_not_string = true;
          break;
        case Field::kShape:
          entry_.shape_seen = true;
          entry_.shape.reset();
          break;
        case Field::kOffsets:
          entry_.offsets_seen = true;
          entry_.offsets.reset();
          break;
        case Field::kOther:
          break;
      }
    } else if (at == 3 && array_ != nullptr) {
      // A non-integer element of shape or data_offsets.
      if (array_ == &shape_) {
        return Malformed("missing \"shape\", or it is not an array of non-negative integers");
      }
      return Malformed("missing \"data_offsets\", or it is not [begin, end]");
    }
    if (kind == Kind::kContainer) {
      skipping_ = true;
      skip_depth_ = depth_ - 1;
    }
    return true;
  }

  bool FinishEntry();

  absl::string_view file_;
  uint64_t data_offset_;
  uint64_t data_size_;
  const SafetensorsLimits& limits_;
  SafetensorsHeader* out_;
  absl::Status status_;

  int depth_ = 0;
  bool skipping_ = false;
  int skip_depth_ = 0;
  bool top_key_is_metadata_ = false;
  bool seen_metadata_ = false;
  bool in_metadata_ = false;
  bool in_entry_ = false;
  uint64_t tensor_count_ = 0;
  std::string metadata_key_;
  RawEntry entry_;
  Field field_ = Field::kOther;
  std::vector<uint64_t> shape_;
  std::vector<uint64_t> offsets_;
  std::vector<uint64_t>* array_ = nullptr;
};

bool HeaderSax::FinishEntry() {
  const std::string& name = entry_.name;
  if (name.empty()) return Malformed("empty tensor name");
  if (!entry_.dtype.has_value()) return Malformed("missing or non-string \"dtype\"");
  SafetensorsEntry entry;
  entry.name = std::move(entry_.name);
  entry.dtype_name = std::move(*entry_.dtype);
  entry_.name = entry.name;  // for messages below
  const DTypeInfo* info = FindDType(View(entry.dtype_name));
  if (info == nullptr) {
    return Fail(format::AboutTensor(
        absl::UnimplementedError(absl::StrCat(file_, ": tensor '", View(name),
                                              "' has unknown dtype '", View(entry.dtype_name),
                                              "'")),
        file_, entry.name));
  }
  entry.dtype = info->dtype;
  if (!entry_.shape.has_value()) {
    return Malformed("missing \"shape\", or it is not an array of non-negative integers");
  }
  entry.shape = std::move(*entry_.shape);
  if (!entry_.offsets.has_value() || entry_.offsets->size() != 2) {
    return Malformed("missing \"data_offsets\", or it is not [begin, end]");
  }
  const uint64_t begin = (*entry_.offsets)[0];
  const uint64_t end = (*entry_.offsets)[1];
  if (end < begin) {
    return Malformed(absl::StrCat("data_offsets [", begin, ", ", end, "] end before they begin"));
  }
  if (!format::ByteRangeInBounds(begin, end - begin, data_size_)) {
    return Malformed(absl::StrCat("data_offsets [", begin, ", ", end,
                                  "] lie outside the data section of ", data_size_, " bytes"));
  }
  auto elements = format::ElementCount(entry.shape);
  if (!elements.ok() || *elements > UINT64_MAX / info->element_bytes) {
    return Malformed(absl::StrCat("shape ", ShapeString(entry.shape), " of ",
                                  View(entry.dtype_name), " overflows 64-bit byte counts"));
  }
  const uint64_t expected_bytes = *elements * info->element_bytes;
  if (expected_bytes != end - begin) {
    return Malformed(absl::StrCat("data_offsets [", begin, ", ", end, "] span ", end - begin,
                                  " bytes, expected ", expected_bytes, " for ",
                                  View(entry.dtype_name), " ", ShapeString(entry.shape)));
  }
  entry.offset = data_offset_ + begin;
  entry.nbytes = expected_bytes;
  out_->tensors.push_back(std::move(entry));
  return true;
}

// IndexSax: reads model.safetensors.index.json as a stream of JSON events,
// keeping only the weight map, so memory follows the weight map and not a
// document tree of the whole text (which costs about twenty times the text).
// Nesting depth, the number of entries and tensor name lengths are bounded as
// they arrive; anything outside "weight_map" ("metadata", ...) is skipped.
class IndexSax : public nlohmann::json_sax<Json> {
 public:
  IndexSax(absl::string_view file, const SafetensorsLimits& limits, SafetensorsIndex* out)
      : file_(file), limits_(limits), out_(out) {}

  const absl::Status& status() const { return status_; }
  bool saw_weight_map() const { return saw_weight_map_; }

  bool null() override { return Value(); }
  bool boolean(bool) override { return Value(); }
  bool number_integer(number_integer_t) override { return Value(); }
  bool number_unsigned(number_unsigned_t) override { return Value(); }
  bool number_float(number_float_t, const string_t&) override { return Value(); }
  bool binary(binary_t&) override { return Value(); }
  bool string(string_t& value) override {
    if (in_weight_map_ && depth_ == 2) {
      out_->weight_map.emplace_back(std::move(tensor_), std::move(value));
      return true;
    }
    return Value();
  }
  bool start_object(std::size_t) override { return Open(/*is_object=*/true); }
  bool start_array(std::size_t) override { return Open(/*is_object=*/false); }
  bool end_object() override { return Close(); }
  bool end_array() override { return Close(); }

  bool key(string_t& key) override {
    if (depth_ == 1) {
      top_key_is_weight_map_ = key == "weight_map";
      return true;
    }
    if (in_weight_map_ && depth_ == 2) {
      if (key.size() > limits_.max_name_bytes) {
        return Fail(absl::ResourceExhaustedError(absl::StrCat(
            file_, ": weight_map tensor name of ", key.size(), " bytes exceeds the limit of ",
            limits_.max_name_bytes)));
      }
      if (out_->weight_map.size() >= limits_.max_tensors) {
        return Fail(absl::ResourceExhaustedError(absl::StrCat(
            file_, ": weight_map lists more than ", limits_.max_tensors, " tensors, the limit")));
      }
      tensor_ = std::move(key);
    }
    return true;
  }

  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception&) override {
    return Fail(absl::InvalidArgumentError(absl::StrCat(
        file_, ": not a safetensors index (not valid JSON at byte ", position, ")")));
  }

 private:
  bool Fail(absl::Status status) {
    if (status_.ok()) status_ = std::move(status);
    return false;
  }
  bool NotAnIndex(absl::string_view why) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat(file_, ": not a safetensors index (", why, ")")));
  }
  // A scalar (or, from Open(), a container) at the current depth.
  bool Value() {
    if (depth_ == 0) return NotAnIndex("not a JSON object");
    if (depth_ == 1 && top_key_is_weight_map_) return NotAnIndex("no \"weight_map\" object");
    if (in_weight_map_ && depth_ == 2) {
      return Fail(absl::DataLossError(absl::StrCat(file_, ": weight_map entry for tensor '",
                                                   View(tensor_), "' is not a string")));
    }
    return true;
  }
  bool Open(bool is_object) {
    if (depth_ == 0 && !is_object) return NotAnIndex("not a JSON object");
    if (depth_ >= 1 && !(depth_ == 1 && top_key_is_weight_map_ && is_object) && !Value()) {
      return false;
    }
    if (depth_ == 1 && top_key_is_weight_map_) {
      if (saw_weight_map_) {
        return Fail(absl::DataLossError(absl::StrCat(file_, ": \"weight_map\" appears twice")));
      }
      saw_weight_map_ = in_weight_map_ = true;
    }
    if (++depth_ > static_cast<int>(limits_.max_json_depth)) {
      return Fail(absl::ResourceExhaustedError(absl::StrCat(
          file_, ": JSON nests deeper than ", limits_.max_json_depth, " levels, the limit")));
    }
    return true;
  }
  bool Close() {
    --depth_;
    if (depth_ == 1 && in_weight_map_) in_weight_map_ = false;
    return true;
  }

  absl::string_view file_;
  const SafetensorsLimits& limits_;
  SafetensorsIndex* out_;
  absl::Status status_;
  int depth_ = 0;
  bool top_key_is_weight_map_ = false;
  bool in_weight_map_ = false;
  bool saw_weight_map_ = false;
  std::string tensor_;
};

}  // namespace

absl::StatusOr<SafetensorsHeader> ParseSafetensors(std::span<const uint8_t> file_bytes,
                                                   absl::string_view file,
                                                   const SafetensorsLimits& limits) {
  const uint64_t file_size = file_bytes.size();
  if (!format::ByteRangeInBounds(0, kLengthFieldBytes, file_size)) {
    return absl::DataLossError(absl::StrCat(file, ": file is ", file_size,
                                            " bytes, too short for the 8-byte header length"));
  }
  const uint64_t header_len = format::DecodeFixed64(file_bytes.data());
  // Inside the file first: a length past the end is damage (or not a
  // safetensors file at all), whatever the limit says.
  if (!format::ByteRangeInBounds(kLengthFieldBytes, header_len, file_size)) {
    return absl::DataLossError(absl::StrCat(file, ": header of ", header_len,
                                            " bytes runs past the end of the ", file_size,
                                            "-byte file"));
  }
  if (header_len > limits.max_header_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(file, ": header length ", header_len,
                                                     " exceeds the limit of ",
                                                     limits.max_header_bytes, " bytes"));
  }
  if (header_len == 0 || file_bytes[kLengthFieldBytes] != '{') {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ": not a safetensors file (header does not begin with '{')"));
  }
  const absl::string_view text(reinterpret_cast<const char*>(file_bytes.data()) + kLengthFieldBytes,
                               header_len);
  SafetensorsHeader result;
  result.data_offset = kLengthFieldBytes + header_len;
  const uint64_t data_size = file_size - result.data_offset;
  HeaderSax sax(file, result.data_offset, data_size, limits, &result);
  try {
    Json::sax_parse(text.begin(), text.end(), &sax, nlohmann::detail::input_format_t::json,
                    /*strict=*/true);
  } catch (const Json::exception&) {
    if (sax.status().ok()) {
      return absl::DataLossError(absl::StrCat(file, ": header is not valid JSON"));
    }
  }
  if (!sax.status().ok()) return sax.status();
  {
    // One entry per name: nlohmann would keep the last of two silently.
    std::vector<const std::string*> names;
    names.reserve(result.tensors.size());
    for (const SafetensorsEntry& e : result.tensors) names.push_back(&e.name);
    std::sort(names.begin(), names.end(),
              [](const std::string* a, const std::string* b) { return *a < *b; });
    for (size_t i = 1; i < names.size(); ++i) {
      if (*names[i] == *names[i - 1]) {
        return absl::DataLossError(absl::StrCat(file, ": header names '", View(*names[i]),
                                                "' more than once"));
      }
    }
  }
  std::sort(result.metadata.begin(), result.metadata.end());

  std::sort(result.tensors.begin(), result.tensors.end(),
            [](const SafetensorsEntry& a, const SafetensorsEntry& b) {
              if (a.offset != b.offset) return a.offset < b.offset;
              return a.name < b.name;
            });
  // Empty tensors occupy no bytes and cannot overlap anything.
  const SafetensorsEntry* previous = nullptr;
  for (const SafetensorsEntry& entry : result.tensors) {
    if (entry.nbytes == 0) continue;
    if (previous != nullptr && entry.offset < previous->offset + previous->nbytes) {
      return absl::DataLossError(absl::StrCat(
          file, ": tensors '", View(previous->name), "' [", previous->offset - result.data_offset,
          ", ", previous->offset + previous->nbytes - result.data_offset, ") and '",
          View(entry.name), "' [", entry.offset - result.data_offset, ", ",
          entry.offset + entry.nbytes - result.data_offset, ") overlap"));
    }
    previous = &entry;
  }
  return result;
}

absl::StatusOr<SafetensorsIndex> ParseSafetensorsIndex(absl::string_view json_text,
                                                       absl::string_view file,
                                                       const SafetensorsLimits& limits) {
  if (json_text.size() > limits.max_index_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(file, ": ", json_text.size(),
                                                     " bytes exceeds the index limit of ",
                                                     limits.max_index_bytes));
  }
  SafetensorsIndex result;
  IndexSax sax(file, limits, &result);
  bool parsed = false;
  try {
    parsed = Json::sax_parse(json_text.begin(), json_text.end(), &sax,
                             nlohmann::detail::input_format_t::json, /*strict=*/true);
  } catch (const Json::exception&) {
    parsed = false;
  }
  if (!sax.status().ok()) return sax.status();
  if (!parsed) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ": not a safetensors index (not valid JSON)"));
  }
  if (!sax.saw_weight_map()) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ": not a safetensors index (no \"weight_map\" object)"));
  }
  std::sort(result.weight_map.begin(), result.weight_map.end());
  for (size_t i = 0; i < result.weight_map.size(); ++i) {
    const auto& [tensor, shard] = result.weight_map[i];
    if (i > 0 && tensor == result.weight_map[i - 1].first) {
      return absl::DataLossError(absl::StrCat(file, ": weight_map names tensor '", View(tensor),
                                              "' more than once"));
    }
    if (shard.empty() || shard == "." || shard == ".." ||
        shard.find('/') != std::string::npos || shard.find('\0') != std::string::npos) {
      return absl::DataLossError(absl::StrCat(file, ": tensor '", View(tensor), "' maps to '",
                                              View(shard),
                                              "', which is not a plain file name"));
    }
    result.shards.push_back(shard);
  }
  std::sort(result.shards.begin(), result.shards.end());
  result.shards.erase(std::unique(result.shards.begin(), result.shards.end()),
                      result.shards.end());
  return result;
}

}  // namespace zcpack::converter

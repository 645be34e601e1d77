#include "zcpack/converter/safetensors.h"

#include <algorithm>
#include <string_view>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "zcpack/format/coding.h"
#include "zcpack/format/dtype.h"
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

// Parses JSON text without exceptions; duplicate keys of the top-level object
// are reported through `duplicate_key` (nlohmann would silently keep the last).
Json ParseJsonObjectText(absl::string_view text, std::string* duplicate_key) {
  absl::flat_hash_set<std::string> keys;
  auto on_event = [&](int depth, Json::parse_event_t event, Json& parsed) {
    if (event == Json::parse_event_t::key && depth == 1 && parsed.is_string() &&
        duplicate_key->empty()) {
      const std::string& key = parsed.get_ref<const std::string&>();
      if (!keys.insert(key).second) *duplicate_key = key;
    }
    return true;
  };
  try {
    return Json::parse(text.begin(), text.end(), on_event, /*allow_exceptions=*/false);
  } catch (const Json::exception&) {
    return Json(Json::value_t::discarded);
  }
}

// Reads a JSON array of non-negative integers that fit in 64 bits.
bool ReadUnsignedArray(const Json& value, std::vector<uint64_t>* out) {
  if (!value.is_array()) return false;
  out->clear();
  out->reserve(value.size());
  for (const Json& element : value) {
    if (!element.is_number_unsigned()) return false;
    out->push_back(element.get<uint64_t>());
  }
  return true;
}

absl::StatusOr<SafetensorsEntry> ParseEntry(const std::string& name, const Json& value,
                                            uint64_t data_offset, uint64_t data_size,
                                            absl::string_view file,
                                            const SafetensorsLimits& limits) {
  const auto malformed = [&](absl::string_view what) {
    return absl::DataLossError(absl::StrCat(file, ": tensor '", View(name), "': ", what));
  };
  if (name.size() > limits.max_name_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat(file, ": tensor name of ", name.size(), " bytes exceeds the limit of ",
                     limits.max_name_bytes, " (name starts '", View(name.substr(0, 64)), "')"));
  }
  if (name.empty()) return malformed("empty tensor name");
  if (!value.is_object()) return malformed("entry is not a JSON object");

  const auto dtype_it = value.find("dtype");
  if (dtype_it == value.end() || !dtype_it->is_string()) {
    return malformed("missing or non-string \"dtype\"");
  }
  SafetensorsEntry entry;
  entry.name = name;
  entry.dtype_name = dtype_it->get<std::string>();
  const DTypeInfo* info = FindDType(View(entry.dtype_name));
  if (info == nullptr) {
    return absl::UnimplementedError(absl::StrCat(file, ": tensor '", View(name),
                                                 "' has unknown dtype '",
                                                 View(entry.dtype_name), "'"));
  }
  entry.dtype = info->dtype;

  const auto shape_it = value.find("shape");
  if (shape_it == value.end() || !ReadUnsignedArray(*shape_it, &entry.shape)) {
    return malformed("missing \"shape\", or it is not an array of non-negative integers");
  }
  if (entry.shape.size() > limits.max_rank) {
    return absl::ResourceExhaustedError(absl::StrCat(file, ": tensor '", View(name), "' has rank ",
                                                     entry.shape.size(), ", limit ",
                                                     limits.max_rank));
  }

  std::vector<uint64_t> offsets;
  const auto offsets_it = value.find("data_offsets");
  if (offsets_it == value.end() || !ReadUnsignedArray(*offsets_it, &offsets) ||
      offsets.size() != 2) {
    return malformed("missing \"data_offsets\", or it is not [begin, end]");
  }
  const uint64_t begin = offsets[0];
  const uint64_t end = offsets[1];
  if (end < begin) {
    return malformed(absl::StrCat("data_offsets [", begin, ", ", end, "] end before they begin"));
  }
  if (!format::ByteRangeInBounds(begin, end - begin, data_size)) {
    return malformed(absl::StrCat("data_offsets [", begin, ", ", end,
                                  "] lie outside the data section of ", data_size, " bytes"));
  }

  auto elements = format::ElementCount(entry.shape);
  if (!elements.ok() || *elements > UINT64_MAX / info->element_bytes) {
    return malformed(absl::StrCat("shape ", ShapeString(entry.shape), " of ",
                                  View(entry.dtype_name), " overflows 64-bit byte counts"));
  }
  const uint64_t expected_bytes = *elements * info->element_bytes;
  if (expected_bytes != end - begin) {
    return malformed(absl::StrCat("data_offsets [", begin, ", ", end, "] span ", end - begin,
                                  " bytes, expected ", expected_bytes, " for ",
                                  View(entry.dtype_name), " ", ShapeString(entry.shape)));
  }
  entry.offset = data_offset + begin;
  entry.nbytes = expected_bytes;
  return entry;
}

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
  std::string duplicate_key;
  const Json header = ParseJsonObjectText(text, &duplicate_key);
  if (header.is_discarded()) {
    return absl::DataLossError(absl::StrCat(file, ": header is not valid JSON"));
  }
  if (!header.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ": not a safetensors file (header JSON is not an object)"));
  }
  if (!duplicate_key.empty()) {
    return absl::DataLossError(absl::StrCat(file, ": header names '", View(duplicate_key),
                                            "' more than once"));
  }
  if (header.size() > limits.max_tensors + 1) {
    return absl::ResourceExhaustedError(absl::StrCat(file, ": header lists ", header.size(),
                                                     " entries, limit ", limits.max_tensors));
  }

  SafetensorsHeader result;
  result.data_offset = kLengthFieldBytes + header_len;
  const uint64_t data_size = file_size - result.data_offset;
  result.tensors.reserve(header.size());
  for (const auto& [key, value] : header.items()) {
    if (key == kMetadataKey) {
      if (!value.is_object()) {
        return absl::DataLossError(absl::StrCat(file, ": __metadata__ is not a JSON object"));
      }
      for (const auto& [meta_key, meta_value] : value.items()) {
        if (!meta_value.is_string()) {
          return absl::DataLossError(absl::StrCat(file, ": __metadata__ value of '",
                                                  View(meta_key), "' is not a string"));
        }
        result.metadata.emplace_back(meta_key, meta_value.get<std::string>());
      }
      continue;
    }
    ZCPACK_ASSIGN_OR_RETURN(SafetensorsEntry entry,
                            ParseEntry(key, value, result.data_offset, data_size, file, limits));
    result.tensors.push_back(std::move(entry));
  }

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
  std::string duplicate_key;
  const Json index = ParseJsonObjectText(json_text, &duplicate_key);
  if (index.is_discarded() || !index.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ": not a safetensors index (not a JSON object)"));
  }
  const auto map_it = index.find("weight_map");
  if (map_it == index.end() || !map_it->is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ": not a safetensors index (no \"weight_map\" object)"));
  }
  if (map_it->size() > limits.max_tensors) {
    return absl::ResourceExhaustedError(absl::StrCat(file, ": weight_map lists ", map_it->size(),
                                                     " tensors, limit ", limits.max_tensors));
  }
  SafetensorsIndex result;
  result.weight_map.reserve(map_it->size());
  for (const auto& [tensor, shard_value] : map_it->items()) {
    if (!shard_value.is_string()) {
      return absl::DataLossError(absl::StrCat(file, ": weight_map entry for tensor '",
                                              View(tensor), "' is not a string"));
    }
    const std::string& shard = shard_value.get_ref<const std::string&>();
    if (shard.empty() || shard == "." || shard == ".." ||
        shard.find('/') != std::string::npos || shard.find('\0') != std::string::npos) {
      return absl::DataLossError(absl::StrCat(file, ": tensor '", View(tensor), "' maps to '",
                                              View(shard),
                                              "', which is not a plain file name"));
    }
    result.weight_map.emplace_back(tensor, shard);
    result.shards.push_back(shard);
  }
  // nlohmann objects iterate in key order, so weight_map is already sorted.
  std::sort(result.shards.begin(), result.shards.end());
  result.shards.erase(std::unique(result.shards.begin(), result.shards.end()),
                      result.shards.end());
  return result;
}

}  // namespace zcpack::converter

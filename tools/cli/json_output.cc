#include "tools/cli/json_output.h"

#include <utility>

#include "zcpack/format/utf8.h"

namespace zcpack::cli {
namespace {

// Escapes in place; keys are rebuilt only for objects that have a bad one,
// so a clean report keeps its key order and costs one pass.
void EscapeStrings(nlohmann::json& value) {
  if (value.is_string()) {
    std::string& text = value.get_ref<std::string&>();
    if (!format::IsValidUtf8(text)) text = format::EscapeInvalidUtf8(text);
  } else if (value.is_array()) {
    for (nlohmann::json& element : value) EscapeStrings(element);
  } else if (value.is_object()) {
    bool bad_key = false;
    for (auto it = value.begin(); it != value.end(); ++it) {
      bad_key = bad_key || !format::IsValidUtf8(it.key());
      EscapeStrings(it.value());
    }
    if (bad_key) {
      nlohmann::json escaped = nlohmann::json::object();
      for (auto it = value.begin(); it != value.end(); ++it) {
        escaped[format::EscapeInvalidUtf8(it.key())] = std::move(it.value());
      }
      value = std::move(escaped);
    }
  }
}

}  // namespace

std::string JsonText(nlohmann::json report, int indent) {
  EscapeStrings(report);
  return report.dump(indent);
}

}  // namespace zcpack::cli

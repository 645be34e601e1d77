#include "tools/cli/json_output.h"

#include <optional>
#include <utility>

#include "absl/strings/cord.h"
#include "tools/cli/exit_codes.h"
#include "zcpack/format/status_context.h"
#include "zcpack/format/utf8.h"

namespace zcpack::cli {
namespace {

constexpr absl::string_view kReportedPayloadUrl = "type.zcpack.dev/zcpack.cli.reported";

// Escapes in place; keys are rebuilt only for objects that have a bad one,
// so a clean report keeps its key order and costs one pass.
template <typename Json>
void EscapeStrings(Json& value) {
  if (value.is_string()) {
    std::string& text = value.template get_ref<std::string&>();
    if (!format::IsValidUtf8(text)) text = format::EscapeInvalidUtf8(text);
  } else if (value.is_array()) {
    for (Json& element : value) EscapeStrings(element);
  } else if (value.is_object()) {
    bool bad_key = false;
    for (auto it = value.begin(); it != value.end(); ++it) {
      bad_key = bad_key || !format::IsValidUtf8(it.key());
      EscapeStrings(it.value());
    }
    if (bad_key) {
      Json escaped = Json::object();
      for (auto it = value.begin(); it != value.end(); ++it) {
        escaped[format::EscapeInvalidUtf8(it.key())] = std::move(it.value());
      }
      value = std::move(escaped);
    }
  }
}

nlohmann::ordered_json Envelope(absl::string_view command) {
  nlohmann::ordered_json j;
  j["schema_version"] = kJsonSchemaVersion;
  j["command"] = std::string(command);
  return j;
}

}  // namespace

std::string JsonText(nlohmann::json report, int indent) {
  EscapeStrings(report);
  return report.dump(indent);
}

std::string JsonText(nlohmann::ordered_json report, int indent) {
  EscapeStrings(report);
  return report.dump(indent);
}

std::string ReportText(absl::string_view command, nlohmann::ordered_json report, int indent) {
  nlohmann::ordered_json j = Envelope(command);
  for (auto it = report.begin(); it != report.end(); ++it) {
    if (it.key() != "schema_version" && it.key() != "command") j[it.key()] = std::move(it.value());
  }
  return JsonText(std::move(j), indent);
}

std::string ReportText(absl::string_view command, const nlohmann::json& report, int indent) {
  return ReportText(command, nlohmann::ordered_json(report), indent);
}

nlohmann::ordered_json ErrorJson(const absl::Status& status, int exit_code,
                                 absl::string_view input) {
  const std::optional<std::string> file = format::StatusFile(status);
  const std::optional<std::string> tensor = format::StatusTensor(status);
  nlohmann::ordered_json e;
  e["code"] = std::string(ExitCodeName(exit_code));
  e["exit_code"] = exit_code;
  e["status"] = absl::StatusCodeToString(status.code());
  if (file.has_value()) {
    e["file"] = *file;
  } else if (!input.empty()) {
    e["file"] = std::string(input);
  } else {
    e["file"] = nullptr;
  }
  e["tensor"] = tensor.has_value() ? nlohmann::ordered_json(*tensor) : nlohmann::ordered_json();
  e["message"] = std::string(status.message());
  return e;
}

std::string ErrorReportText(absl::string_view command, const absl::Status& status, int exit_code,
                            absl::string_view input, int indent) {
  nlohmann::ordered_json j;
  j["error"] = ErrorJson(status, exit_code, input);
  return ReportText(command, std::move(j), indent);
}

nlohmann::json QuantStatsJson(const format::QuantStats& stats) {
  return {{"rmse", stats.rmse()},
          {"max_abs_error", stats.max_abs_error()},
          {"snr_db", stats.snr_db()}};
}

absl::Status MarkReported(absl::Status status) {
  if (!status.ok()) status.SetPayload(kReportedPayloadUrl, absl::Cord("1"));
  return status;
}

bool Reported(const absl::Status& status) {
  return status.GetPayload(kReportedPayloadUrl).has_value();
}

}  // namespace zcpack::cli

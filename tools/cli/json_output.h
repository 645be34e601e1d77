// The one way the zcpack commands turn a JSON report into text, and the
// parts every report shares (docs/JSON.md; docs/zcpack.schema.json).
//
// nlohmann::json stores std::string as given and throws type_error 316 from
// dump() when a string is not UTF-8. Linux paths are bytes and tensor names
// come from untrusted files, so a report that echoes either could abort the
// program after the work was done (convert had already written its output).
// JsonText() is the chokepoint: every string, and every object key, passes
// through format::EscapeInvalidUtf8() first, so the text is always valid
// UTF-8 and the bad bytes stay visible as \xNN, the same spelling the
// manifest and the error messages use.
//
// Every report a command prints for --json is one object that starts with
// the same two keys, {"schema_version": kJsonSchemaVersion, "command": NAME}
// (ReportText()); a command that fails prints the same object with an
// "error" member (ErrorJson()), either alone or inside the report it had
// built (verify, bench).
#ifndef ZCPACK_TOOLS_CLI_JSON_OUTPUT_H_
#define ZCPACK_TOOLS_CLI_JSON_OUTPUT_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "zcpack/format/manifest.pb.h"

namespace zcpack::cli {

// The version of the --json schema (docs/JSON.md, "Versions"): raised when a
// key is renamed or removed or changes meaning; a key added keeps it.
inline constexpr int kJsonSchemaVersion = 1;

// JsonText(): `report` serialised with `indent` spaces (-1: one line), after
// escaping invalid UTF-8 in its strings and keys. Never throws for a report
// built from strings, numbers, booleans, null, arrays and objects.
std::string JsonText(nlohmann::json report, int indent = 2);
std::string JsonText(nlohmann::ordered_json report, int indent = 2);

// ReportText(): JsonText() of `report` (an object) with "schema_version" and
// "command" set first: what a command prints for --json.
std::string ReportText(absl::string_view command, nlohmann::ordered_json report, int indent = 2);
std::string ReportText(absl::string_view command, const nlohmann::json& report, int indent = 2);

// ErrorJson(): the "error" member for a failed command: {code (the exit
// code's name, ExitCodeName()), exit_code, status (the absl code's name),
// file, tensor, message}. `file` and `tensor` come from the status's
// payloads (zcpack/format/status_context.h); without a file payload, `file`
// is `input` (the file the command was given), or null when `input` is
// empty; without a tensor payload, `tensor` is null.
nlohmann::ordered_json ErrorJson(const absl::Status& status, int exit_code,
                                 absl::string_view input);

// ErrorReportText(): the whole object a failed command prints on stdout:
// ReportText(command, {"error": ErrorJson(...)}).
std::string ErrorReportText(absl::string_view command, const absl::Status& status, int exit_code,
                            absl::string_view input, int indent = 2);

// QuantStatsJson(): a tensor's quantization error as every report spells it:
// {rmse, max_abs_error, snr_db}.
nlohmann::json QuantStatsJson(const format::QuantStats& stats);

// MarkReported(): `status` marked as already printed, inside the command's
// own report, so that main() does not print a second object.
// Reported(): whether it was.
absl::Status MarkReported(absl::Status status);
bool Reported(const absl::Status& status);

}  // namespace zcpack::cli

#endif  // ZCPACK_TOOLS_CLI_JSON_OUTPUT_H_

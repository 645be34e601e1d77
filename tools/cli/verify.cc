#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "tools/cli/commands.h"
#include "tools/cli/exit_codes.h"
#include "tools/cli/input_kind.h"
#include "tools/cli/json_output.h"
#include "tools/cli/progress.h"
#include "tools/cli/terminal.h"
#include "zcpack/format/status_context.h"
#include "zcpack/status_macros.h"

namespace zcpack::cli {

absl::Status RunVerify(const VerifyCommandOptions& options, std::ostream& out) {
  ZCPACK_RETURN_IF_ERROR(ExpectContainer(options.path, "verify"));
  validator::VerifyOptions verify = options.verify;
  ProgressLine progress(!options.quiet && !options.json);
  if (progress.enabled()) {
    verify.progress = [&progress](const validator::VerifyProgress& p) {
      progress.Update({absl::StrCat("verify ", p.stage), p.bytes_done, p.bytes_total, 0, 0, "",
                       p.seconds});
    };
  }
  absl::StatusOr<validator::VerifyReport> verified = validator::Verify(options.path, verify);
  progress.Finish();
  ZCPACK_ASSIGN_OR_RETURN(const validator::VerifyReport report, std::move(verified));
  absl::Status status;
  if (!report.sound()) {
    std::string message = absl::StrCat(options.path, ": unsound, ", report.problem_count,
                                       report.problem_count == 1 ? " problem" : " problems");
    std::string tensor;
    if (!report.problems.empty()) {
      const validator::Problem& first = report.problems.front();
      absl::StrAppend(&message, "; first: ", first.check,
                      first.tensor.empty() ? "" : absl::StrCat(" tensor '", first.tensor, "'"),
                      first.offset ? absl::StrCat(" at offset ", *first.offset) : "", ": ",
                      first.detail);
      tensor = first.tensor;
    }
    status = format::AboutTensor(absl::DataLossError(message), options.path, tensor);
  }
  if (!options.json) {
    if (!options.quiet || !report.sound()) {
      std::string text = validator::FormatReportText(report);
      if (options.verbose) {
        absl::StrAppend(&text, "checks:\n");
        for (const validator::CheckOutcome& c : report.checks) {
          absl::StrAppend(&text, "  ", validator::CheckResultName(c.result), "  ", c.group, "/",
                          c.name);
          if (c.problems > 0) absl::StrAppend(&text, " (", c.problems, " problems)");
          if (!c.detail.empty()) absl::StrAppend(&text, ": ", c.detail);
          absl::StrAppend(&text, "\n");
        }
      }
      out << FitToTerminal(text, STDOUT_FILENO);
    }
    return status;
  }
  // The report with, when it failed, the error (docs/JSON.md, "verify"):
  // one object on stdout either way.
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(validator::FormatReportJson(report));
  if (!status.ok()) j["error"] = ErrorJson(status, ExitCodeFor(status), options.path);
  out << ReportText("verify", std::move(j)) << "\n";
  return MarkReported(status);
}

}  // namespace zcpack::cli

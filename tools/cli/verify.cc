#include <string>

#include "absl/strings/str_cat.h"
#include "tools/cli/commands.h"
#include "tools/cli/input_kind.h"
#include "zcpack/status_macros.h"

namespace zcpack::cli {

absl::Status RunVerify(const VerifyCommandOptions& options, std::ostream& out) {
  ZCPACK_RETURN_IF_ERROR(ExpectContainer(options.path, "verify"));
  ZCPACK_ASSIGN_OR_RETURN(const validator::VerifyReport report,
                          validator::Verify(options.path, options.verify));
  out << (options.json ? validator::FormatReportJson(report)
                       : validator::FormatReportText(report));
  if (report.sound()) return absl::OkStatus();
  std::string message = absl::StrCat(options.path, ": unsound, ", report.problem_count,
                                     report.problem_count == 1 ? " problem" : " problems");
  if (!report.problems.empty()) {
    const validator::Problem& first = report.problems.front();
    absl::StrAppend(&message, "; first: ", first.check,
                    first.tensor.empty() ? "" : absl::StrCat(" tensor '", first.tensor, "'"),
                    first.offset ? absl::StrCat(" at offset ", *first.offset) : "", ": ",
                    first.detail);
  }
  return absl::DataLossError(message);
}

}  // namespace zcpack::cli

#include "zcpack/format/problem.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "zcpack/format/status_context.h"

namespace zcpack::format {

std::string ProblemMessage(const Problem& problem) {
  if (problem.tensor_index.has_value()) {
    return absl::StrCat("tensor #", *problem.tensor_index, " '", problem.tensor,
                        "': ", problem.detail);
  }
  return problem.detail;
}

absl::Status ProblemStatus(const Problem& problem, absl::string_view file) {
  return WithTensor(
      WithFile(absl::Status(problem.code, absl::StrCat(file, ": ", ProblemMessage(problem))), file),
      problem.tensor);
}

bool FirstProblem::Add(Problem problem) {
  if (std::find(tolerated_.begin(), tolerated_.end(), problem.check) != tolerated_.end()) {
    return true;
  }
  if (!problem_.has_value()) problem_ = std::move(problem);
  return false;
}

absl::Status FirstProblem::Status(absl::string_view file) const {
  if (!problem_.has_value()) return absl::OkStatus();
  return ProblemStatus(*problem_, file);
}

}  // namespace zcpack::format

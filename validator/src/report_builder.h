// Internal: the registry of checks and the builder every stage of Verify()
// reports through. Not thread-safe: stages compute in parallel, then report
// from one thread in file order, so that reports are deterministic.
#ifndef ZCPACK_VALIDATOR_SRC_REPORT_BUILDER_H_
#define ZCPACK_VALIDATOR_SRC_REPORT_BUILDER_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "zcpack/validator/verify.h"

namespace zcpack::validator::internal {

struct CheckInfo {
  absl::string_view name;
  absl::string_view group;
  absl::string_view description;
};

// AllChecks(): every check, in the order Verify() runs them.
std::span<const CheckInfo> AllChecks();

class ReportBuilder {
 public:
  // Fills report->checks from AllChecks(), every check skipped as "not
  // reached" until a stage says otherwise.
  ReportBuilder(VerifyReport* report, size_t max_problems);

  // Ran(): the check ran; it passes unless Add() gives it a problem.
  void Ran(absl::string_view check);
  // RanGroup(): Ran() for every check of `group`.
  void RanGroup(absl::string_view group);
  // Add(): a problem found by `check` (which is then marked as run).
  void Add(absl::string_view check, std::string tensor, std::optional<uint64_t> offset,
           std::string detail);
  // Skip(): the check did not run, for `reason` (ignored if it ran).
  void Skip(absl::string_view check, absl::string_view reason);
  // SkipGroup(): Skip() for every check of `group` that has not run.
  void SkipGroup(absl::string_view group, absl::string_view reason);
  // SetDetail(): a short summary of what a check looked at.
  void SetDetail(absl::string_view check, std::string detail);

  // Problems found so far by the checks of `group` (all of them) or by
  // `check`.
  uint64_t GroupProblems(absl::string_view group) const;
  uint64_t CheckProblems(absl::string_view check) const;

  // Finish(): turns run/skipped states into results. Call once, at the end.
  void Finish();

 private:
  CheckOutcome& Find(absl::string_view check);
  const CheckOutcome& Find(absl::string_view check) const;

  VerifyReport* report_;
  size_t max_problems_;
  std::vector<bool> ran_;
};

}  // namespace zcpack::validator::internal

#endif  // ZCPACK_VALIDATOR_SRC_REPORT_BUILDER_H_

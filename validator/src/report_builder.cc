#include "report_builder.h"

#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <vector>
#include <utility>

#include "zcpack/format/structural_rules.h"

namespace zcpack::validator::internal {
namespace {

// Checks of this module, beside format's structural rules.
constexpr CheckInfo kReaderCheck = {"reader", "tensor_table",
                                    "the format library's reader opens the file"};
constexpr CheckInfo kDataChecks[] = {
    {"checksum", "integrity", "every tensor's data matches its XXH3-64"},
    {"padding", "integrity", "every byte outside the header, tensors and manifest is zero"},
    {"source_model", "source", "the source's hyperparameters equal the container's"},
    {"source_tensors", "source", "the source and the container hold the same tensor names"},
    {"source_shape", "source", "each tensor has the same shape in the source"},
    {"source_data", "source", "tensors stored unconverted equal the source byte for byte"},
    {"quant_error", "source", "each converted tensor's error is within --max-rmse and --min-snr"},
    {"quant_stats", "source", "the manifest's error statistics are those of this source"},
    {"smoke_run", "inference",
     "the runtime opens the container and generates tokens with finite logits"},
};

// format's rules (one name per rule of format/SPEC.md, "Reader checks and
// limits", and of the model), with "reader" after the tensor table, then the
// data checks.
std::vector<CheckInfo> BuildChecks() {
  std::vector<CheckInfo> checks;
  for (const format::RuleInfo& rule : format::StructuralRules()) {
    if (rule.group == "model" && !checks.empty() && checks.back().group == "tensor_table") {
      checks.push_back(kReaderCheck);
    }
    checks.push_back({rule.name, rule.group, rule.description});
  }
  checks.insert(checks.end(), std::begin(kDataChecks), std::end(kDataChecks));
  return checks;
}

const std::vector<CheckInfo>& Checks() {
  static const std::vector<CheckInfo>* const checks = new std::vector<CheckInfo>(BuildChecks());
  return *checks;
}

}  // namespace

std::span<const CheckInfo> AllChecks() { return Checks(); }

ReportBuilder::ReportBuilder(VerifyReport* report, size_t max_problems)
    : report_(report), max_problems_(max_problems), ran_(Checks().size(), false) {
  report_->checks.clear();
  for (const CheckInfo& c : Checks()) {
    CheckOutcome outcome;
    outcome.name = std::string(c.name);
    outcome.group = std::string(c.group);
    outcome.description = std::string(c.description);
    outcome.detail = "not reached";
    report_->checks.push_back(std::move(outcome));
  }
}

CheckOutcome& ReportBuilder::Find(absl::string_view check) {
  for (CheckOutcome& c : report_->checks) {
    if (c.name == check) return c;
  }
  // A name missing from kChecks is a bug in this module, caught by its tests.
  std::fprintf(stderr, "zcpack validator: unknown check '%.*s'\n", static_cast<int>(check.size()),
               check.data());
  std::abort();
}

const CheckOutcome& ReportBuilder::Find(absl::string_view check) const {
  return const_cast<ReportBuilder*>(this)->Find(check);
}

void ReportBuilder::Ran(absl::string_view check) {
  CheckOutcome& c = Find(check);
  const size_t index = static_cast<size_t>(&c - report_->checks.data());
  if (!ran_[index]) {
    ran_[index] = true;
    c.detail.clear();
  }
}

void ReportBuilder::RanGroup(absl::string_view group) {
  for (const CheckOutcome& c : report_->checks) {
    if (c.group == group) Ran(c.name);
  }
}

void ReportBuilder::Add(absl::string_view check, std::string tensor, std::optional<uint64_t> offset,
                        std::string detail) {
  Ran(check);
  ++Find(check).problems;
  ++report_->problem_count;
  if (report_->problems.size() < max_problems_) {
    report_->problems.push_back({std::string(check), std::move(tensor), offset, std::move(detail)});
  }
}

void ReportBuilder::Skip(absl::string_view check, absl::string_view reason) {
  CheckOutcome& c = Find(check);
  if (!ran_[static_cast<size_t>(&c - report_->checks.data())]) c.detail = std::string(reason);
}

void ReportBuilder::SkipGroup(absl::string_view group, absl::string_view reason) {
  for (const CheckOutcome& c : report_->checks) {
    if (c.group == group) Skip(c.name, reason);
  }
}

void ReportBuilder::SetDetail(absl::string_view check, std::string detail) {
  Find(check).detail = std::move(detail);
}

uint64_t ReportBuilder::GroupProblems(absl::string_view group) const {
  uint64_t n = 0;
  for (const CheckOutcome& c : report_->checks) {
    if (c.group == group) n += c.problems;
  }
  return n;
}

uint64_t ReportBuilder::CheckProblems(absl::string_view check) const {
  return Find(check).problems;
}

void ReportBuilder::Finish() {
  for (size_t i = 0; i < report_->checks.size(); ++i) {
    CheckOutcome& c = report_->checks[i];
    if (!ran_[i]) {
      c.result = CheckResult::kSkipped;
    } else {
      c.result = c.problems > 0 ? CheckResult::kFail : CheckResult::kPass;
    }
  }
}

}  // namespace zcpack::validator::internal

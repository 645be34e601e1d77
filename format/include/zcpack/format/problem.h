// Problem and ProblemSink: how the structural rules (structural_rules.h,
// model_layout.h) report what they find, so that one set of rules serves two
// callers that want different things:
//   - the reader and the runtime stop at the first problem and turn it into
//     an absl::Status (FirstProblem);
//   - `zcpack verify` lists every problem, each under its rule's name
//     (ProblemList, or the validator's own sink that fills its report).
// A checker calls Ran() for each rule as it reaches it, in the order of
// StructuralRules(), and Add() for each problem; Add() returning false stops
// the checker at once.
//
// Thread-safety: sinks are not thread-safe; a checker reports from the thread
// that called it.
#ifndef ZCPACK_FORMAT_PROBLEM_H_
#define ZCPACK_FORMAT_PROBLEM_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace zcpack::format {

// One broken rule.
struct Problem {
  // The rule's name, one of StructuralRules() (static storage).
  absl::string_view check;
  // What the reader returns for it (format/SPEC.md, "Errors"): DataLoss for a
  // defect, ResourceExhausted for an exceeded ReaderLimits limit,
  // InvalidArgument for "not a container", Unimplemented for a newer format
  // or a model this runtime cannot run.
  absl::StatusCode code = absl::StatusCode::kDataLoss;
  // The tensor, when the problem is about one: its name (cut short when it is
  // over the name limit) and, for tensor-table rules, its index in the table.
  std::string tensor;
  std::optional<int> tensor_index;
  // File byte offset the problem is at, when there is one.
  std::optional<uint64_t> offset;
  // What is wrong, expected vs actual; without the file name, and without
  // the tensor when tensor_index is set (ProblemMessage() adds it).
  std::string detail;
};

// ProblemMessage(): "tensor #3 'blk.0.q': <detail>" for a tensor-table
// problem (one with a tensor_index), otherwise the detail alone (the model
// rules name their tensor in it).
std::string ProblemMessage(const Problem& problem);

// ProblemStatus(): the problem as the reader returns it: its code, and
// "<file>: " + ProblemMessage().
absl::Status ProblemStatus(const Problem& problem, absl::string_view file);

class ProblemSink {
 public:
  virtual ~ProblemSink() = default;
  // Ran(): the checker reached rule `check` (whether or not it finds a
  // problem).
  virtual void Ran(absl::string_view check) { (void)check; }
  // Add(): a problem. Returns true to go on checking, false to stop now.
  virtual bool Add(Problem problem) = 0;
};

// FirstProblem: keeps the first problem and stops the checker there, except
// for problems of the rules in `tolerated`, which it passes over (the runtime
// tolerates what only makes a container slower, such as "access_order").
class FirstProblem final : public ProblemSink {
 public:
  FirstProblem() = default;
  explicit FirstProblem(std::vector<absl::string_view> tolerated)
      : tolerated_(std::move(tolerated)) {}

  bool Add(Problem problem) override;

  bool found() const { return problem_.has_value(); }
  const std::optional<Problem>& problem() const { return problem_; }
  // Status(): OK when nothing was found, else ProblemStatus(problem, file).
  absl::Status Status(absl::string_view file) const;

 private:
  std::vector<absl::string_view> tolerated_;
  std::optional<Problem> problem_;
};

// ProblemList: keeps every problem, in the order found.
class ProblemList final : public ProblemSink {
 public:
  bool Add(Problem problem) override {
    problems_.push_back(std::move(problem));
    return true;
  }
  const std::vector<Problem>& problems() const { return problems_; }

 private:
  std::vector<Problem> problems_;
};

}  // namespace zcpack::format

#endif  // ZCPACK_FORMAT_PROBLEM_H_

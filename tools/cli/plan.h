// `zcpack plan`: how much memory a container needs, per context length and
// per loader, before anything is allocated (runtime/memory_plan.h), and
// whether it fits the memory available or a budget.
#ifndef ZCPACK_TOOLS_CLI_PLAN_H_
#define ZCPACK_TOOLS_CLI_PLAN_H_

#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace zcpack::cli {

struct PlanCommandOptions {
  std::string path;
  // Context lengths as given (--context, repeatable); empty: 512, 2048,
  // 8192 and the model's maximum.
  std::vector<std::string> contexts;
  // --budget: a size with an optional K/M/G/T unit; "" means none (the
  // memory available is the limit).
  std::string budget;
  // Tokens of the largest single evaluation (a prompt); 0: the whole context.
  int batch = 0;
  int threads = 0;
  bool json = false;
};

// RunPlan(): opens the container zero-copy (no weight byte is read),
// measures this process's own memory as the baseline, and prints the plan:
// text tables (80 columns) or, with json, the report whose keys
// docs/BENCHMARKS.md ("Memory plan") documents. Errors: the container
// reader's; InvalidArgument for a bad option.
absl::Status RunPlan(const PlanCommandOptions& options, std::ostream& out);

// CheckPlanOptions(): InvalidArgument (a usage error) for a context or batch
// that is not a positive number, or a budget that is not a size, without
// reading the container.
absl::Status CheckPlanOptions(const PlanCommandOptions& options);

}  // namespace zcpack::cli

#endif  // ZCPACK_TOOLS_CLI_PLAN_H_

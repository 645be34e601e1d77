// Internal to `zcpack bench`: the report it builds from its runs (a JSON
// object, also printed with --json), the targets it checks (--targets), and
// its renderings: text tables, CSV and JSON lines (--output), the timeline
// CSV and the gnuplot chart.
//
// Report layout (--json; every key in docs/JSON.md, "bench"): input,
// file_bytes, model, machine, method, load_before/after, cold_read {read_ms,
// bytes_per_s, parallel {...}}, rows [{state: warm|cold|budget, loader,
// skipped?, runs [RunRecord()], median, min, max}], budget {limit_bytes, how,
// cgroup | skipped}, logits {identical, xxh3, argmax}, targets? [{target,
// value, met}], notes, timeline_csv?, plot?.
#ifndef ZCPACK_TOOLS_CLI_BENCH_REPORT_H_
#define ZCPACK_TOOLS_CLI_BENCH_REPORT_H_

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"
#include "zcpack/runtime/model.h"
#include "tools/cli/bench_system.h"

namespace zcpack::cli::bench {

inline constexpr double kMiB = 1024.0 * 1024.0;

// One `zcpack bench-child` run: what the process did, and the JSON line it
// printed (null when it printed none: it failed or was killed).
struct ChildRun {
  SampledProcess process;
  nlohmann::json report;
  bool ok() const { return process.exit_code == 0 && report.is_object(); }
};

// ParseChildRun(): takes the child's last stdout line as its report, and its
// own final VmHWM (exact) over the sampled one (up to 1 ms late).
ChildRun ParseChildRun(SampledProcess process);

// A run whose timeline goes into the CSV and the chart.
struct TimelineEntry {
  std::string state;
  std::string loader;
  const ChildRun* run;
};

double Median(std::vector<double> values);
// Num(): 3 significant figures or so: "0.412", "4.12", "41.2", "412".
std::string Num(double v);

// RunRecord(): one run for the report: its figures, or how it ended;
// `cgroup` holds the statistics of the cgroup it ran in, if any.
nlohmann::json RunRecord(const ChildRun& run, double resident_before,
                         const std::optional<MemoryCgroup::Stats>& cgroup);

// Summarise(): a row's median, min and max of each figure over its
// completed runs.
void Summarise(nlohmann::json& row);

// MemoryBudgetJson(): the memory budget `model` applied (Model::budget_plan())
// and the bytes it has streamed so far, for `zcpack run --json` and the
// bench child's report; null when it has none.
nlohmann::json MemoryBudgetJson(const runtime::Model& model);

// SummariseStreaming(): report["budget"]["streaming"] for a budget row with
// the zcpack --memory-budget run: its bytes streamed per token (planned, and
// measured over the decode), the cold sequential read bandwidth, the bound
// bandwidth / bytes per token in tokens/s, and each budget row's median
// tokens/s against it.
void SummariseStreaming(nlohmann::json& report);

// EvaluateTargets(): fills report["targets"] from the rows' medians: the
// project's own goals (docs/BENCHMARKS.md), checked only with --targets.
void EvaluateTargets(nlohmann::json& report);

// PrintText(): the report as text with Markdown tables; its prose wrapped
// at `columns` (tables are not wrapped).
void PrintText(const nlohmann::json& report, int columns, std::ostream& out);

// PrintCsv(): a header line, then one line per row of the report: input,
// state, loader, run_count, completed_count, skipped, and the median, min
// and max of each figure (empty when no run of the row completed); fields
// quoted as RFC 4180 says.
void PrintCsv(const nlohmann::json& report, std::ostream& out);

// PrintJsonLines(): one JSON object per line, one per row of the report
// (docs/JSON.md, "bench --output jsonl").
void PrintJsonLines(const nlohmann::json& report, std::ostream& out);

// WriteTimelineCsv(): one line per sample: state, loader, t_ms since
// Model::Open() began, anonymous, file-backed and total RSS in KiB, phase.
absl::Status WriteTimelineCsv(const std::string& path, const std::vector<TimelineEntry>& runs);

// RenderPlot(): the timeline of `state`'s completed runs, charted by gnuplot
// into `plot_path` (.svg or .png).
absl::Status RenderPlot(const std::string& plot_path, const std::string& state,
                        const nlohmann::json& report, const std::vector<TimelineEntry>& runs);

}  // namespace zcpack::cli::bench

#endif  // ZCPACK_TOOLS_CLI_BENCH_REPORT_H_

// `zcpack bench`: loaders compared on one container, cold and warm, with the
// memory picture. See RunBench() in commands.h and docs/BENCHMARKS.md.
//
// Every measured run is a fresh child process (`zcpack bench-child`, in
// bench_child.cc) so that no loader inherits another's heap or page tables.
// This process prepares the page cache, starts the child (inside a memory
// cgroup for the budget rows), samples /proc/PID/status every millisecond
// for the anonymous and file-backed RSS, and collects page faults from
// wait4(2) (bench_system.h); bench_report.h turns the runs into the report.
// Numbers are reported, never asserted.
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"
#include "tools/cli/bench_report.h"
#include "tools/cli/bench_system.h"
#include "tools/cli/commands.h"
#include "tools/cli/input_kind.h"
#include "tools/cli/exit_codes.h"
#include "tools/cli/json_output.h"
#include "tools/cli/terminal_text.h"
#include "zcpack/format/container_reader.h"
#include "zcpack/format/dtype.h"
#include "zcpack/format/posix_file.h"
#include "zcpack/runtime/memory_plan.h"
#include "zcpack/runtime/model.h"
#include "zcpack/status_macros.h"

namespace zcpack::cli {
namespace {

using nlohmann::json;

// The default budget, as a fraction of the container's size.
constexpr double kAutoBudgetFraction = 0.6;
// Below this, an automatic budget measures the process, not the loader.
constexpr uint64_t kMinAutoBudgetBytes = uint64_t{32} << 20;
// Anonymous memory a loader may use beyond its weights before the bench
// refuses to run it outside a cgroup (code, stacks, scratch, KV cache).
constexpr uint64_t kSafetyMarginBytes = uint64_t{512} << 20;
// The cold-read probe besides the sequential read() (`cat`, the reference
// limit): threads reading pieces in parallel, many requests in flight.
constexpr int kParallelReadThreads = 8;
constexpr uint64_t kParallelReadChunkBytes = uint64_t{4} << 20;

// The loader names in the order given; "mmap-naive" is an alias of "mmap".
absl::StatusOr<std::vector<std::string>> ParseLoaderList(const std::string& text) {
  std::vector<std::string> loaders;
  for (absl::string_view piece : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    std::string name(absl::StripAsciiWhitespace(piece));
    if (name == "mmap-naive") name = "mmap";
    ZCPACK_ASSIGN_OR_RETURN(const runtime::Loader loader, runtime::ParseLoader(name));
    name = std::string(runtime::LoaderName(loader));
    if (std::find(loaders.begin(), loaders.end(), name) != loaders.end()) {
      return absl::InvalidArgumentError(absl::StrCat("--loaders: '", name, "' given twice"));
    }
    loaders.push_back(name);
  }
  if (loaders.empty()) return absl::InvalidArgumentError("--loaders: give at least one loader");
  return loaders;
}

bool OnPath(const std::string& program) {
  const char* path = std::getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path != nullptr ? path : "/usr/bin:/bin", ':')) {
    const std::string candidate = absl::StrCat(dir, "/", program);
    if (::access(candidate.c_str(), X_OK) == 0) return true;
  }
  return false;
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json MachineFacts(const std::string& file) {
  json m;
  m["cores"] = ::sysconf(_SC_NPROCESSORS_ONLN);
  for (absl::string_view line : absl::StrSplit(ReadText("/proc/cpuinfo"), '\n')) {
    if (absl::StartsWith(line, "model name")) {
      m["cpu"] = std::string(absl::StripAsciiWhitespace(line.substr(line.find(':') + 1)));
      break;
    }
  }
  utsname u{};
  if (::uname(&u) == 0) m["kernel"] = absl::StrCat(u.sysname, " ", u.release);
  if (auto mem = bench::ReadMemInfo(); mem.ok()) {
    m["mem_total_bytes"] = mem->total;
    m["mem_available_bytes"] = mem->available;
  }
  struct statvfs fs{};
  const std::string dir = std::filesystem::path(file).parent_path().string();
  if (::statvfs(dir.empty() ? "." : dir.c_str(), &fs) == 0) {
    m["disk_free_bytes"] = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
  }
  return m;
}

json LoadAverage() {
  double load[3] = {0, 0, 0};
  ::getloadavg(load, 3);
  return {load[0], load[1], load[2]};
}

// Anonymous memory a copying loader needs for its weights; 0 for the mapped ones.
uint64_t PredictedAnonBytes(const std::string& loader, uint64_t file_bytes) {
  if (loader == "classic") return 2 * file_bytes;
  if (loader == "pread" || loader == "direct") return file_bytes;
  return 0;
}

// The options, checked and decoded.
struct BenchPlan {
  std::vector<std::string> loaders;
  int tokens = 16;
  std::vector<std::string> states;  // "warm", "cold", in that order
  // The budget row: nullopt for none, 0 for "auto" (set from the file size).
  std::optional<uint64_t> budget;
  std::string output = "text";  // text, json, csv or jsonl
  // --memory-budget: the budget row also runs zcpack streaming under it.
  bool stream = false;
};

// The budget row's run of the zcpack loader under --memory-budget.
constexpr const char* kStreamingRow = "zcpack --memory-budget";

absl::StatusOr<BenchPlan> MakePlan(const BenchCommandOptions& options) {
  BenchPlan plan;
  ZCPACK_ASSIGN_OR_RETURN(plan.loaders, ParseLoaderList(options.loaders));
  if (!options.tokens.empty() &&
      (!absl::SimpleAtoi(options.tokens, &plan.tokens) || plan.tokens < 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tokens: '", options.tokens, "' is not a positive number of tokens"));
  }
  if (options.runs < 1) return absl::InvalidArgumentError("--runs must be at least 1");
  plan.output = absl::AsciiStrToLower(options.output.empty() ? "text" : options.output);
  if (plan.output != "text" && plan.output != "json" && plan.output != "csv" &&
      plan.output != "jsonl") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--output: '", options.output, "' is not a report format; give text, json, csv or jsonl"));
  }
  if (options.json) {
    if (plan.output != "text" && plan.output != "json") {
      return absl::InvalidArgumentError(
          absl::StrCat("--json asks for --output json; it cannot go with --output ", plan.output));
    }
    plan.output = "json";
  }
  if (static_cast<int>(options.cold) + options.warm + options.both > 1) {
    return absl::InvalidArgumentError("give at most one of --cold, --warm and --both");
  }
  if (!options.cold) plan.states.push_back("warm");
  if (!options.warm) plan.states.push_back("cold");
  const std::string budget = absl::AsciiStrToLower(options.budget);
  if (budget == "auto" || budget.empty()) {
    plan.budget = 0;
  } else if (budget != "off" && budget != "none" && budget != "0") {
    ZCPACK_ASSIGN_OR_RETURN(plan.budget, bench::ParseByteSize(options.budget));
    if (*plan.budget < (uint64_t{16} << 20)) {
      return absl::InvalidArgumentError("--budget: give at least 16MiB (or off)");
    }
  }
  ZCPACK_ASSIGN_OR_RETURN(const uint64_t memory_budget, bench::ParseMemoryBudget(options.memory_budget));
  if (memory_budget > 0) {
    if (options.budget_given) {
      return absl::InvalidArgumentError(
          "give one of --budget and --memory-budget (--memory-budget sets the budget row's limit)");
    }
    if (memory_budget < (uint64_t{16} << 20)) {
      return absl::InvalidArgumentError("--memory-budget: give at least 16MiB");
    }
    if (std::find(plan.loaders.begin(), plan.loaders.end(), "zcpack") == plan.loaders.end()) {
      return absl::InvalidArgumentError("--memory-budget needs the zcpack loader in --loaders");
    }
    plan.budget = memory_budget;
    plan.stream = true;
  }
  if (!options.plot.empty()) {
    const std::string lower = absl::AsciiStrToLower(options.plot);
    if (!absl::EndsWith(lower, ".svg") && !absl::EndsWith(lower, ".png")) {
      return absl::InvalidArgumentError("--plot: the chart must be a .svg or a .png file");
    }
  }
  return plan;
}

// Describes the container's model for the report, and its size; closes it
// again (a mapping held here would pin the pages it touched in the cache).
absl::StatusOr<json> DescribeModel(const std::string& path, uint64_t* file_bytes) {
  ZCPACK_ASSIGN_OR_RETURN(std::unique_ptr<format::Container> c, format::Container::Open(path));
  const format::ModelInfo& m = c->manifest().model();
  std::map<std::string, uint64_t> by_dtype;
  for (size_t i = 0; i < c->num_tensors(); ++i) {
    by_dtype[std::string(format::DTypeName(c->tensor(i).dtype()))] += c->tensor(i).nbytes();
  }
  std::vector<std::string> parts;
  for (const auto& [dtype, bytes] : by_dtype) {
    parts.push_back(absl::StrCat(dtype, " ", bench::FormatBytes(bytes)));
  }
  *file_bytes = c->file_size();
  return json{{"architecture", m.architecture()},
              {"num_layers", m.num_layers()},
              {"hidden_size", m.hidden_size()},
              {"vocab_size", m.vocab_size()},
              {"tensor_count", c->num_tensors()},
              {"bytes_by_dtype", by_dtype},
              {"dtype_summary", absl::StrJoin(parts, ", ")}};
}

// Times `repeats` cold reads of the file, sequential and parallel, each after
// eviction: the physical limit for a cold load.
absl::StatusOr<json> MeasureColdRead(const std::string& path, uint64_t file_bytes, int repeats) {
  std::vector<double> seconds, parallel_seconds;
  for (int i = 0; i < repeats; ++i) {
    ZCPACK_RETURN_IF_ERROR(bench::EvictFromPageCache(path));
    ZCPACK_ASSIGN_OR_RETURN(const double s, bench::ReadWholeFile(path));
    seconds.push_back(s);
    ZCPACK_RETURN_IF_ERROR(bench::EvictFromPageCache(path));
    ZCPACK_ASSIGN_OR_RETURN(const double p, bench::ReadWholeFileParallel(
                                                path, kParallelReadThreads,
                                                kParallelReadChunkBytes));
    parallel_seconds.push_back(p);
  }
  const double s = bench::Median(seconds), p = bench::Median(parallel_seconds);
  const double bytes = static_cast<double>(file_bytes);
  const auto ms = [](std::vector<double> v) {
    for (double& x : v) x *= 1e3;
    return v;
  };
  return json{{"read_ms", s * 1e3},
              {"all_read_ms", ms(seconds)},
              {"repeat_count", repeats},
              {"bytes_per_s", bytes / s},
              {"parallel",
               {{"threads", kParallelReadThreads},
                {"chunk_bytes", kParallelReadChunkBytes},
                {"read_ms", p * 1e3},
                {"all_read_ms", ms(parallel_seconds)},
                {"bytes_per_s", bytes / p}}}};
}

// What every run of one `zcpack bench` shares, and the runs whose timelines
// are kept.
struct BenchSession {
  explicit BenchSession(const BenchCommandOptions& o) : options(o) {}
  const BenchCommandOptions& options;
  std::string exe;  // this program, re-executed as bench-child
  std::string path;
  int tokens = 16;
  bool keep_timeline = false;
  std::vector<std::unique_ptr<bench::ChildRun>> kept;
  std::vector<bench::TimelineEntry> timelines;
};

// The memory cgroup a run goes into: none (limit 0), a best-effort guard,
// or a required budget.
struct RunLimit {
  uint64_t bytes = 0;
  bool required = false;
};

// MeasureRun(): prepares the page cache (evicted when `cold`, else read
// whole), runs one bench-child with `loader` under `limit`, prints a progress
// line on stderr and returns the run's record for the report.
absl::StatusOr<json> MeasureRun(BenchSession& session, const std::string& state,
                                const std::string& loader, bool cold, const RunLimit& limit,
                                int run, uint64_t memory_budget = 0) {
  if (cold) {
    ZCPACK_RETURN_IF_ERROR(bench::EvictFromPageCache(session.path));
  } else {
    ZCPACK_RETURN_IF_ERROR(bench::ReadWholeFile(session.path).status());
  }
  ZCPACK_ASSIGN_OR_RETURN(const double resident, bench::ResidentFraction(session.path));
  std::unique_ptr<bench::MemoryCgroup> group;
  if (limit.bytes > 0) {
    auto created = bench::MemoryCgroup::Create(limit.bytes);
    if (created.ok()) {
      group = std::move(*created);
    } else if (limit.required) {
      return created.status();
    }
  }
  const bool keep = session.keep_timeline && run == 0;
  std::vector<std::string> args = {"bench-child", session.path, "--loader", loader,
                                   "-n", absl::StrCat(session.tokens), "--threads",
                                   absl::StrCat(session.options.threads)};
  if (memory_budget > 0) {
    args.push_back("--memory-budget");
    args.push_back(absl::StrCat(memory_budget));
  }
  const std::string label = memory_budget > 0 ? std::string(kStreamingRow) : loader;
  ZCPACK_ASSIGN_OR_RETURN(bench::SampledProcess process,
                          bench::RunSampled(session.exe, args, group.get(), keep));
  auto child = std::make_unique<bench::ChildRun>(bench::ParseChildRun(std::move(process)));
  std::optional<bench::MemoryCgroup::Stats> stats;
  if (group != nullptr) stats = group->ReadStats();
  group.reset();  // removes the cgroup; the child has been reaped
  json record = bench::RunRecord(*child, resident, stats);
  if (stats.has_value() && !limit.required) record["guard_cgroup"] = true;
  if (!session.options.quiet) std::fprintf(
      stderr, "bench: %s %s run %d/%d: %s\n", state.c_str(), label.c_str(), run + 1,
      session.options.runs,
      child->ok()
          ? absl::StrFormat("usable %s ms, first token %s ms, %s tokens/s, anon %s MiB",
                            bench::Num(record["usable_ms"].get<double>()),
                            bench::Num(record["ttft_ms"].get<double>()),
                            bench::Num(record["decode_tokens_per_s"].get<double>()),
                            bench::Num(record["peak_anon_bytes"].get<double>() / bench::kMiB))
                .c_str()
          : record["outcome"].get<std::string>().c_str());
  if (keep) {
    session.timelines.push_back({state, label, child.get()});
    session.kept.push_back(std::move(child));
  }
  return record;
}

// Whether every completed run produced the same first-token logits.
json CompareLogits(const json& rows) {
  std::map<std::string, std::vector<std::string>> by_hash;
  int completed = 0;
  json argmax = nullptr;
  for (const json& row : rows) {
    for (const json& run : row["runs"]) {
      if (!run["ok"].get<bool>()) continue;
      ++completed;
      by_hash[run["logits_xxh3"].get<std::string>()].push_back(
          absl::StrCat(row["state"].get<std::string>(), "/", row["loader"].get<std::string>()));
      argmax = run["argmax"];
    }
  }
  json logits = {{"identical", by_hash.size() == 1}, {"run_count", completed}};
  if (by_hash.size() == 1) {
    logits["xxh3"] = by_hash.begin()->first;
    logits["argmax"] = argmax;
  } else if (by_hash.empty()) {
    logits["detail"] = "no run completed";
  } else {
    std::vector<std::string> parts;
    for (const auto& [hash, who] : by_hash) {
      parts.push_back(absl::StrCat(hash, ": ", absl::StrJoin(who, " ")));
    }
    logits["detail"] = absl::StrJoin(parts, "; ");
  }
  return logits;
}

}  // namespace

absl::Status CheckBenchOptions(const BenchCommandOptions& options) {
  return MakePlan(options).status();
}

absl::Status RunBench(const BenchCommandOptions& options, std::ostream& out) {
  ZCPACK_ASSIGN_OR_RETURN(const BenchPlan plan, MakePlan(options));
  ZCPACK_RETURN_IF_ERROR(ExpectContainer(options.path, "bench"));
  if (!options.plot.empty() && !OnPath("gnuplot")) {
    return absl::UnavailableError(
        "--plot needs gnuplot on PATH (Debian: apt-get install gnuplot-nox)");
  }
  char exe[4096];
  const ssize_t exe_len = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (exe_len <= 0) return format::ErrnoError(errno, "/proc/self/exe", "readlink");
  BenchSession session{options};
  session.exe.assign(exe, static_cast<size_t>(exe_len));
  session.path = options.path;
  session.tokens = plan.tokens;
  session.keep_timeline = !options.timeline_csv.empty() || !options.plot.empty();

  json report;
  report["input"] = options.path;
  uint64_t file_bytes = 0;
  ZCPACK_ASSIGN_OR_RETURN(report["model"], DescribeModel(options.path, &file_bytes));
  report["file_bytes"] = file_bytes;
  report["machine"] = MachineFacts(options.path);
  report["load_before"] = LoadAverage();
  ZCPACK_ASSIGN_OR_RETURN(const bench::MemInfo mem, bench::ReadMemInfo());
  report["method"] = {
      {"description",
       absl::StrFormat("each run a fresh child process (zcpack bench-child) that opens the model, "
                       "evaluates a fixed 10-token prompt and generates %d tokens greedily on %s; "
                       "%d run(s) per row, loaders interleaved; cells are median [min, max]; "
                       "usable = Model::Open() returned (copying loaders copy inside it); first "
                       "token = from just before Open() to the first sampled token",
                       plan.tokens,
                       options.threads > 0 ? absl::StrCat(options.threads, " threads")
                                           : std::string("all cores"),
                       options.runs)},
      {"memory",
       "/proc/PID/status (RssAnon, RssFile, VmRSS) sampled every 1 ms from outside the child; the "
       "anonymous peak comes only from that sampling (the kernel keeps no anonymous high-water "
       "mark), the total peak is the kernel's VmHWM; page faults from wait4() rusage of the whole "
       "child"},
      {"token_count", plan.tokens},
      {"run_count", options.runs},
      {"threads", runtime::SessionThreads(options.threads)}};
  report["notes"] = json::array();
  report["rows"] = json::array();

  const auto has = [](const std::vector<std::string>& v, const char* x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  };
  if (has(plan.states, "cold") || plan.stream) {  // the streaming bound needs the bandwidth
    report["method"]["cold"] =
        "fsync(2) + posix_fadvise(POSIX_FADV_DONTNEED) on the file before each run; residency "
        "then checked with mincore(2) over a fresh mapping";
    ZCPACK_ASSIGN_OR_RETURN(report["cold_read"],
                            MeasureColdRead(options.path, file_bytes, options.runs));
  }
  if (has(plan.states, "warm")) {
    report["method"]["warm"] =
        "the whole file read with read() before each run; residency checked with mincore(2)";
    if (has(plan.loaders, "direct")) {
      report["notes"].push_back(
          "direct, warm: O_DIRECT bypasses the page cache, so its warm runs read the disk too");
    }
  }

  // Warm and cold rows. A copying loader that cannot fit in the available
  // memory is not run outside a cgroup; one that needs more than half of it
  // runs in a guard cgroup, so that a misjudgement kills only the child.
  int unexpected_failures = 0;
  for (const std::string& state : plan.states) {
    std::vector<json> rows;
    std::vector<RunLimit> limits;
    for (const std::string& loader : plan.loaders) {
      json row = {{"state", state}, {"loader", loader}, {"runs", json::array()}};
      const uint64_t need = PredictedAnonBytes(loader, file_bytes);
      if (need > 0 && need + kSafetyMarginBytes > mem.available) {
        row["skipped"] = absl::StrCat(
            "needs about ", bench::FormatBytes(need), " of anonymous memory and ",
            bench::FormatBytes(mem.available),
            " is available; not run outside a cgroup (see the budget row)");
      }
      rows.push_back(row);
      limits.push_back(need > mem.available / 2
                           ? RunLimit{mem.available - kSafetyMarginBytes, /*required=*/false}
                           : RunLimit{});
    }
    for (int run = 0; run < options.runs; ++run) {
      for (size_t i = 0; i < plan.loaders.size(); ++i) {
        if (rows[i].contains("skipped")) continue;
        ZCPACK_ASSIGN_OR_RETURN(json record, MeasureRun(session, state, plan.loaders[i],
                                                        state == "cold", limits[i], run));
        if (!record["ok"].get<bool>()) ++unexpected_failures;
        rows[i]["runs"].push_back(std::move(record));
      }
    }
    for (json& row : rows) {
      bench::Summarise(row);
      report["rows"].push_back(std::move(row));
    }
  }

  // The memory-budget row: classic and zcpack, cold, each run in a fresh
  // memory cgroup (the file is evicted first, so the page cache it reads is
  // charged to that cgroup).
  std::vector<std::string> budget_loaders;
  for (const char* l : {"classic", "zcpack"}) {
    if (has(plan.loaders, l)) budget_loaders.push_back(l);
  }
  if (plan.budget.has_value() && !budget_loaders.empty()) {
    uint64_t limit = *plan.budget;
    std::string how;
    std::string skipped;
    if (limit == 0) {
      limit = static_cast<uint64_t>(kAutoBudgetFraction * static_cast<double>(file_bytes)) >> 12
              << 12;
      how = absl::StrFormat("auto: %.1f x the file", kAutoBudgetFraction);
      if (limit < kMinAutoBudgetBytes) {
        skipped = absl::StrCat("the file is too small for a meaningful budget: ",
                               kAutoBudgetFraction, " x the file is below ",
                               bench::FormatBytes(kMinAutoBudgetBytes),
                               ", about what the process needs without any weights; give "
                               "--budget to force one");
      }
    } else {
      how = absl::StrFormat(plan.stream ? "--memory-budget; %.2f x the file" : "--budget; %.2f x the file",
                            static_cast<double>(limit) / static_cast<double>(file_bytes));
    }
    json b = {{"limit_bytes", limit},
              {"how", how},
              {"preparation",
               "the file evicted before each run (as cold), so that the page cache it reads is "
               "charged to the cgroup; a fresh cgroup per run"}};
    if (skipped.empty()) {
      if (auto probe = bench::MemoryCgroup::Create(limit); probe.ok()) {
        b["cgroup"] = (*probe)->description();
      } else {
        skipped = absl::StrCat("memory cgroups are not usable here: ", probe.status().message());
      }
    }
    if (!skipped.empty()) {
      b["skipped"] = skipped;
    } else {
      // Each entry: the loader, and the --memory-budget its child gets (0:
      // none; the zcpack row without one is today's behaviour, the baseline).
      std::vector<std::pair<std::string, uint64_t>> entries;
      for (const std::string& loader : budget_loaders) entries.push_back({loader, 0});
      if (plan.stream) entries.push_back({"zcpack", limit});
      std::vector<json> rows;
      for (const auto& [loader, memory_budget] : entries) {
        rows.push_back({{"state", "budget"},
                        {"loader", memory_budget > 0 ? std::string(kStreamingRow) : loader},
                        {"runs", json::array()}});
      }
      for (int run = 0; run < options.runs; ++run) {
        for (size_t i = 0; i < entries.size(); ++i) {
          ZCPACK_ASSIGN_OR_RETURN(
              json record, MeasureRun(session, "budget", entries[i].first, /*cold=*/true,
                                      RunLimit{limit, /*required=*/true}, run, entries[i].second));
          rows[i]["runs"].push_back(std::move(record));
        }
      }
      for (json& row : rows) {
        bench::Summarise(row);
        report["rows"].push_back(std::move(row));
      }
    }
    report["budget"] = b;
    if (plan.stream) bench::SummariseStreaming(report);
  }
  report["load_after"] = LoadAverage();
  report["logits"] = CompareLogits(report["rows"]);
  if (options.targets) bench::EvaluateTargets(report);

  if (!options.timeline_csv.empty()) {
    ZCPACK_RETURN_IF_ERROR(bench::WriteTimelineCsv(options.timeline_csv, session.timelines));
    report["timeline_csv"] = options.timeline_csv;
  }
  absl::Status plot_status;
  if (!options.plot.empty()) {
    plot_status = bench::RenderPlot(options.plot, has(plan.states, "cold") ? "cold" : "warm",
                                    report, session.timelines);
    if (plot_status.ok()) report["plot"] = options.plot;
  }
  // The failure, if any, is known before the report is printed, so that a
  // JSON report carries it (docs/JSON.md, "Errors").
  absl::Status status = plot_status;
  if (status.ok() && report["logits"]["run_count"].get<int>() > 0 &&
      !report["logits"]["identical"].get<bool>()) {
    status = absl::DataLossError("first-token logits differ between loaders or runs (see the report)");
  }
  if (status.ok() && unexpected_failures > 0) {
    status = absl::InternalError(absl::StrCat(unexpected_failures,
                                              " run(s) outside the budget row failed; see the report"));
  }
  if (plan.output == "text") {
    bench::PrintText(report, ProseColumns(STDOUT_FILENO), out);
    return status;
  }
  if (plan.output == "csv") {
    bench::PrintCsv(report, out);
    return status;
  }
  if (plan.output == "jsonl") {
    bench::PrintJsonLines(report, out);
    if (!status.ok()) {
      out << ErrorReportText("bench", status, ExitCodeFor(status), options.path, -1) << "\n";
    }
    return MarkReported(status);
  }
  if (!status.ok()) report["error"] = ErrorJson(status, ExitCodeFor(status), options.path);
  out << ReportText("bench", report) << "\n";
  return MarkReported(status);
}

}  // namespace zcpack::cli

#include "tools/cli/bench_report.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <span>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tools/cli/json_output.h"
#include "tools/cli/terminal_text.h"
#include "zcpack/format/posix_file.h"
#include "zcpack/format/temp_file.h"
#include "zcpack/format/utf8.h"
#include "zcpack/runtime/memory_plan.h"
#include "zcpack/status_macros.h"

extern char** environ;

namespace zcpack::cli::bench {
namespace {

using nlohmann::json;

std::string LastLine(const std::string& text) {
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n', absl::SkipWhitespace());
  return lines.empty() ? std::string() : std::string(absl::StripAsciiWhitespace(lines.back()));
}

// The per-run figures summarised in every row.
constexpr const char* kMetrics[] = {"usable_ms",       "ttft_ms",          "decode_tokens_per_s",
                                    "peak_anon_bytes", "peak_total_bytes", "peak_file_bytes",
                                    "major_faults",    "minor_faults"};

const json* FindRow(const json& report, absl::string_view state, absl::string_view loader) {
  for (const json& row : report["rows"]) {
    if (row["state"] == std::string(state) && row["loader"] == std::string(loader) &&
        row["median"].contains("ttft_ms")) {
      return &row;
    }
  }
  return nullptr;
}

void AddTarget(json& report, const std::string& target, const std::string& value, bool met,
               const std::string& why = "") {
  json t = {{"target", target}, {"value", value}, {"met", met}};
  if (!why.empty()) t["note"] = why;
  report["targets"].push_back(t);
}

std::string LoaderColor(const std::string& loader) {
  if (loader == "classic") return "#d62728";
  if (loader == "pread") return "#ff7f0e";
  if (loader == "direct") return "#9467bd";
  if (loader == "mmap") return "#7f7f7f";
  return "#1f77b4";
}

std::string Cell(const json& row, const char* key, double scale, bool integer = false) {
  if (!row["median"].contains(key)) return "-";
  auto fmt = [&](double v) {
    return integer ? absl::StrCat(static_cast<int64_t>(std::llround(v * scale))) : Num(v * scale);
  };
  const double med = row["median"][key].get<double>(), lo = row["min"][key].get<double>(),
               hi = row["max"][key].get<double>();
  if (row["runs"].size() == 1 || fmt(lo) == fmt(hi)) return fmt(med);
  return absl::StrCat(fmt(med), " [", fmt(lo), ", ", fmt(hi), "]");
}

}  // namespace

ChildRun ParseChildRun(SampledProcess process) {
  ChildRun run;
  run.process = std::move(process);
  std::vector<absl::string_view> lines =
      absl::StrSplit(run.process.stdout_text, '\n', absl::SkipWhitespace());
  if (!lines.empty()) {
    run.report = json::parse(std::string(lines.back()), nullptr, /*allow_exceptions=*/false);
    if (run.report.is_discarded()) run.report = nullptr;
  }
  if (run.ok() && run.report.contains("vm_hwm_kib")) {
    run.process.hwm_kib = std::max(run.process.hwm_kib, run.report["vm_hwm_kib"].get<uint64_t>());
  }
  return run;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

json RunRecord(const ChildRun& run, double resident_before,
               const std::optional<bench::MemoryCgroup::Stats>& cgroup) {
  json r = {{"ok", run.ok()},
            {"exit_code", run.process.exit_code},
            {"signal", run.process.signal},
            {"resident_before", resident_before},
            {"peak_anon_bytes", run.process.peak_anon_kib << 10},
            {"peak_file_bytes", run.process.peak_file_kib << 10},
            {"peak_total_bytes", std::max(run.process.hwm_kib, run.process.peak_rss_kib) << 10},
            {"major_faults", run.process.major_faults},
            {"minor_faults", run.process.minor_faults},
            {"sample_count", run.process.samples},
            {"max_sample_gap_ms", run.process.max_gap_ms}};
  if (run.ok() && run.report.contains("memory_budget")) r["memory_budget"] = run.report["memory_budget"];
  if (run.ok()) {
    for (const char* key : {"usable_ms", "ttft_ms", "decode_tokens_per_s", "kv_cache_bytes",
                            "logits_xxh3", "argmax", "generated", "notes", "owned_bytes",
                            "nonfinite_logits"}) {
      r[key] = run.report[key];
    }
  } else {
    r["stderr_last_line"] = LastLine(run.process.stderr_text);
  }
  if (cgroup.has_value()) {
    r["cgroup"] = {{"peak_bytes", cgroup->peak_bytes},
                   {"failcnt", cgroup->failcnt},
                   {"oom_kills", cgroup->oom_kills}};
  }
  // How the run ended, in words.
  std::string outcome;
  if (run.ok()) {
    outcome = "completed";
  } else if (run.process.signal == SIGKILL && cgroup.has_value() &&
             (cgroup->oom_kills > 0 || cgroup->failcnt > 0)) {
    outcome = "out of memory (SIGKILL from the cgroup's OOM killer)";
  } else if (run.process.signal != 0) {
    outcome = absl::StrCat("killed by signal ", run.process.signal, " (", strsignal(run.process.signal), ")");
  } else if (absl::StrContains(run.process.stderr_text, "cannot allocate")) {
    outcome = "out of memory (allocation failed)";
  } else {
    outcome = absl::StrCat("failed (exit ", run.process.exit_code, ")");
    // The child's own last line says why (a context longer than the model's,
    // say); without it the report gives no reason.
    const absl::string_view err = absl::StripTrailingAsciiWhitespace(run.process.stderr_text);
    const size_t newline = err.rfind('\n');
    const absl::string_view last = newline == absl::string_view::npos ? err : err.substr(newline + 1);
    if (!last.empty()) absl::StrAppend(&outcome, ": ", format::EscapeInvalidUtf8(last));
  }
  r["outcome"] = outcome;
  return r;
}

// Median, min and max of each metric over the row's completed runs.
void Summarise(json& row) {
  json median = json::object(), lo = json::object(), hi = json::object();
  for (const char* key : kMetrics) {
    std::vector<double> values;
    for (const json& run : row["runs"]) {
      if (run["ok"].get<bool>() && run.contains(key)) values.push_back(run[key].get<double>());
    }
    if (values.empty()) continue;
    median[key] = Median(values);
    lo[key] = *std::min_element(values.begin(), values.end());
    hi[key] = *std::max_element(values.begin(), values.end());
  }
  row["median"] = median;
  row["min"] = lo;
  row["max"] = hi;
}

std::string Num(double v) {
  const double a = std::fabs(v);
  if (a >= 100) return absl::StrFormat("%.0f", v);
  if (a >= 10) return absl::StrFormat("%.1f", v);
  if (a >= 1) return absl::StrFormat("%.2f", v);
  return absl::StrFormat("%.3f", v);
}

json MemoryBudgetJson(const runtime::Model& model) {
  const runtime::BudgetPlan* plan = model.budget_plan();
  if (plan == nullptr) return nullptr;
  return {{"budget_bytes", plan->budget_bytes},
          {"streams", plan->streams},
          {"anon_bytes", plan->anon_bytes},
          {"margin_bytes", plan->margin_bytes},
          {"ring_bytes", plan->ring_bytes},
          {"resident_bytes", plan->resident_bytes},
          {"streamed_bytes_per_token", plan->streamed_bytes_per_token},
          {"streamed_layers", plan->streamed_layers},
          {"output_streamed", plan->output_streamed},
          {"streamed_bytes", model.streamed_bytes()}};
}

void SummariseStreaming(json& report) {
  const json* streaming = FindRow(report, "budget", "zcpack --memory-budget");
  if (streaming == nullptr || !report.contains("cold_read")) return;
  json s = json::object();
  std::vector<double> measured;
  for (const json& run : (*streaming)["runs"]) {
    if (!run["ok"].get<bool>() || !run.contains("memory_budget")) continue;
    const json& m = run["memory_budget"];
    s["plan"] = m;
    measured.push_back(m["decode_streamed_bytes_per_token"].get<double>());
  }
  if (!s.contains("plan")) return;
  const double per_token = s["plan"]["streamed_bytes_per_token"].get<double>();
  if (!s["plan"]["streams"].get<bool>()) {
    s["note"] = "the budget holds the whole file besides the anonymous memory: nothing streamed";
    report["budget"]["streaming"] = s;
    return;
  }
  const double bandwidth = report["cold_read"]["bytes_per_second"].get<double>();
  s["streamed_bytes_per_token"] = per_token;
  s["measured_streamed_bytes_per_token"] = Median(measured);
  s["cold_read_bytes_per_second"] = bandwidth;
  s["bound_tokens_per_s"] = per_token > 0 ? bandwidth / per_token : 0.0;
  s["rows"] = json::array();
  for (const json& row : report["rows"]) {
    if (row["state"] != "budget" || !row["median"].contains("decode_tokens_per_s")) continue;
    const double tps = row["median"]["decode_tokens_per_s"].get<double>();
    s["rows"].push_back({{"loader", row["loader"]},
                         {"tokens_per_s", tps},
                         {"of_bound", per_token > 0 ? tps / s["bound_tokens_per_s"].get<double>() : 0.0}});
  }
  report["budget"]["streaming"] = s;
}

// The targets docs/BENCHMARKS.md reports on, computed from the medians.
void EvaluateTargets(json& report) {
  report["targets"] = json::array();
  const double file_bytes = report["file_bytes"].get<double>();
  const json* zw = FindRow(report, "warm", "zcpack");
  const json* cw = FindRow(report, "warm", "classic");
  if (zw != nullptr) {
    const double ms = (*zw)["median"]["usable_ms"].get<double>();
    AddTarget(report, "zcpack time to usable, warm, <= 1 ms", Num(ms) + " ms", ms <= 1.0);
    if (cw != nullptr) {
      const double ratio = (*cw)["median"]["usable_ms"].get<double>() / std::max(ms, 1e-6);
      AddTarget(report, "zcpack time to usable, warm, >= 100x faster than classic",
                Num(ratio) + "x", ratio >= 100);
    }
  }
  const json* zc = FindRow(report, "cold", "zcpack");
  if (zc != nullptr) {
    const double z = (*zc)["median"]["ttft_ms"].get<double>();
    for (const char* other : {"pread", "direct", "mmap"}) {
      if (const json* o = FindRow(report, "cold", other); o != nullptr) {
        const double v = (*o)["median"]["ttft_ms"].get<double>();
        AddTarget(report, absl::StrCat("zcpack cold time to first token <= ", other),
                  absl::StrFormat("%s ms vs %s ms (%.2fx)", Num(z), Num(v), z / v), z <= v);
      }
    }
    if (report.contains("cold_read")) {
      const double limit = report["cold_read"]["read_ms"].get<double>();
      const double deep = report["cold_read"]["parallel"]["read_ms"].get<double>();
      std::string value =
          absl::StrFormat("%s ms vs limit %s ms (%.2fx; %.2fx the parallel-read limit %s ms)",
                          Num(z), Num(limit), z / limit, z / deep, Num(deep));
      // The first token also needs the prompt computed; warm, that is all it
      // costs, so max(read, compute) is the floor an ideal overlap reaches.
      if (const json* w = FindRow(report, "warm", "zcpack"); w != nullptr) {
        const double compute = (*w)["median"]["ttft_ms"].get<double>();
        absl::StrAppend(&value, absl::StrFormat(
                                    "; compute alone (zcpack warm first token) %s ms, so "
                                    "max(read, compute) = %s ms (%.2fx)",
                                    Num(compute), Num(std::max(limit, compute)),
                                    z / std::max(limit, compute)));
      }
      AddTarget(report, "zcpack cold time to first token <= 1.2 x file bytes / cold read bandwidth",
                value, z <= 1.2 * limit);
    }
  }
  double zcpack_anon = -1, kv = 0;
  for (const json& row : report["rows"]) {
    if (row["loader"] != "zcpack" || row["state"] == "budget") continue;
    for (const json& run : row["runs"]) {
      if (!run["ok"].get<bool>()) continue;
      zcpack_anon = std::max(zcpack_anon, run["peak_anon_bytes"].get<double>());
      kv = run["kv_cache_bytes"].get<double>();
    }
  }
  if (zcpack_anon >= 0) {
    AddTarget(report, "zcpack peak anonymous RSS <= 64 MiB + KV cache (worst run)",
              absl::StrFormat("%s MiB vs %s MiB (KV cache %s MiB)", Num(zcpack_anon / kMiB),
                              Num(64 + kv / kMiB), Num(kv / kMiB)),
              zcpack_anon <= 64 * kMiB + kv);
  }
  for (const char* state : {"warm", "cold"}) {
    if (const json* c = FindRow(report, state, "classic"); c != nullptr) {
      const double ratio = (*c)["median"]["peak_total_bytes"].get<double>() / file_bytes;
      AddTarget(report, absl::StrCat("classic peak total RSS ~ 2 x file (", state, ")"),
                absl::StrFormat("%.2fx", ratio), ratio >= 1.8 && ratio <= 2.2);
    }
  }
  if (report.contains("budget") && !report["budget"].contains("skipped")) {
    std::map<std::string, std::string> outcome;
    for (const json& row : report["rows"]) {
      if (row["state"] != "budget") continue;
      int completed = 0;
      for (const json& run : row["runs"]) completed += run["ok"].get<bool>();
      outcome[row["loader"]] = absl::StrCat(completed, "/", row["runs"].size(), " completed");
      if (row["loader"] == "classic") {
        AddTarget(report, "classic fails under the budget", outcome["classic"], completed == 0);
      } else if (row["loader"] == "zcpack") {
        AddTarget(report, "zcpack completes its generation under the budget", outcome["zcpack"],
                  completed == static_cast<int>(row["runs"].size()));
      } else {
        AddTarget(report, absl::StrCat(row["loader"].get<std::string>(), " completes under the budget"),
                  outcome[row["loader"]], completed == static_cast<int>(row["runs"].size()));
      }
    }
    if (report["budget"].contains("streaming") && report["budget"]["streaming"].contains("rows")) {
      const json& s = report["budget"]["streaming"];
      for (const json& row : s["rows"]) {
        if (row["loader"] != "zcpack --memory-budget") continue;
        AddTarget(report,
                  "zcpack --memory-budget tokens/s >= 0.8 x cold read bandwidth / bytes streamed per token",
                  absl::StrFormat("%s tokens/s vs bound %s (%.2fx)", Num(row["tokens_per_s"].get<double>()),
                                  Num(s["bound_tokens_per_s"].get<double>()), row["of_bound"].get<double>()),
                  row["of_bound"].get<double>() >= 0.8);
      }
    }
  }
}

// Writes the timeline CSV: one line per sample, t_ms since Model::Open() began.
// Atomically, as every output of zcpack (format::TempFile): an interrupted
// or failed write leaves no partial file.
absl::Status WriteTimelineCsv(const std::string& path,
                              const std::vector<TimelineEntry>& runs) {
  std::ostringstream csv;
  csv << "state,loader,t_ms,rss_anon_kib,rss_file_kib,vm_rss_kib,phase\n";
  for (const TimelineEntry& entry : runs) {
    const ChildRun* run = entry.run;
    const json& r = run->report;
    const bool ok = run->ok();
    const int64_t origin = ok ? r["open_start_ns"].get<int64_t>() : run->process.exec_ns;
    for (const MemorySample& s : run->process.timeline) {
      std::string phase = "run";
      if (ok) {
        phase = s.t_ns < origin                                ? "exec"
                : s.t_ns < r["usable_ns"].get<int64_t>()       ? "load"
                : s.t_ns < r["first_token_ns"].get<int64_t>()  ? "first-token"
                : s.t_ns < r["end_ns"].get<int64_t>()          ? "decode"
                                                               : "exit";
      }
      csv << entry.state << ',' << entry.loader << ','
          << absl::StrFormat("%.3f", static_cast<double>(s.t_ns - origin) * 1e-6) << ','
          << s.anon_kib << ',' << s.file_kib << ',' << s.rss_kib << ',' << phase << '\n';
    }
  }
  const std::string text = std::move(csv).str();
  ZCPACK_ASSIGN_OR_RETURN(format::TempFile temp, format::TempFile::Create(path));
  ZCPACK_RETURN_IF_ERROR(format::WriteAt(
      temp.fd(), 0,
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()),
      temp.path()));
  return temp.Install(/*overwrite=*/true);
}

// Renders the memory timeline of one state with gnuplot: total RSS (solid)
// and anonymous RSS (dashed) per loader, a dot at the first token, and the
// file size for scale. Series are reduced to at most ~800 points each,
// keeping each interval's maximum so that no peak is lost.
absl::Status RenderPlot(const std::string& plot_path, const std::string& state, const json& report,
                        const std::vector<TimelineEntry>& runs) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "zcpack-plot-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) return format::ErrnoError(errno, tmpl, "mkdtemp");
  const std::string dir = tmpl;
  const std::string data_path = dir + "/timeline.dat", script_path = dir + "/timeline.gp";
  double max_t_ms = 0;
  std::vector<const TimelineEntry*> chosen;
  for (const auto& entry : runs) {
    if (entry.state == state && entry.run->ok() && !entry.run->process.timeline.empty()) {
      chosen.push_back(&entry);
      const int64_t origin = entry.run->report["open_start_ns"].get<int64_t>();
      max_t_ms = std::max(max_t_ms, (entry.run->process.timeline.back().t_ns - origin) * 1e-6);
    }
  }
  if (chosen.empty()) return absl::FailedPreconditionError("--plot: no completed run to plot");
  const bool seconds = max_t_ms > 5000;
  const double unit = seconds ? 1e-9 : 1e-6;
  std::ofstream data(data_path);
  // Blocks 0..n-1: the series; blocks n..2n-1: one point at the first token.
  for (const auto* entry : chosen) {
    const ChildRun& run = *entry->run;
    const int64_t origin = run.report["open_start_ns"].get<int64_t>();
    const int64_t span = run.process.timeline.back().t_ns - origin;
    const int64_t bucket = std::max<int64_t>(span / 800, 1);
    int64_t bucket_end = origin + bucket;
    uint64_t rss = 0, anon = 0;
    bool pending = false;
    for (const MemorySample& s : run.process.timeline) {
      if (s.t_ns < origin) continue;
      if (s.t_ns >= bucket_end && pending) {
        data << absl::StrFormat("%.4f %.2f %.2f\n", (bucket_end - origin) * unit, rss / 1024.0,
                                anon / 1024.0);
        rss = anon = 0;
        pending = false;
        while (bucket_end <= s.t_ns) bucket_end += bucket;
      }
      rss = std::max(rss, s.rss_kib);
      anon = std::max(anon, s.anon_kib);
      pending = true;
    }
    if (pending) {
      data << absl::StrFormat("%.4f %.2f %.2f\n", (run.process.timeline.back().t_ns - origin) * unit,
                              rss / 1024.0, anon / 1024.0);
    }
    data << "\n\n";
  }
  for (const auto* entry : chosen) {
    const ChildRun& run = *entry->run;
    const int64_t origin = run.report["open_start_ns"].get<int64_t>();
    const int64_t first = run.report["first_token_ns"].get<int64_t>();
    uint64_t rss = 0;
    for (const MemorySample& s : run.process.timeline) {
      if (s.t_ns <= first) rss = s.rss_kib;
    }
    data << absl::StrFormat("%.4f %.2f\n\n\n", (first - origin) * unit, rss / 1024.0);
  }
  data.close();

  // gnuplot draws into a temporary file beside the chart (it opens the path
  // and truncates the file this process created and locked), installed once
  // gnuplot succeeds: an interrupted or failed run leaves no partial chart.
  ZCPACK_ASSIGN_OR_RETURN(format::TempFile chart, format::TempFile::Create(plot_path));
  const bool png = absl::EndsWith(absl::AsciiStrToLower(plot_path), ".png");
  const std::string file_name = std::filesystem::path(report["input"].get<std::string>()).filename();
  std::string script = absl::StrCat(
      png ? "set terminal pngcairo size 1000,560 noenhanced font 'sans,11'\n"
          : "set terminal svg size 1000,560 dynamic noenhanced font 'sans,12' background rgb 'white'\n",
      "set output '", absl::StrReplaceAll(chart.path(), {{"'", "''"}}), "'\n",
      "set title \"", absl::StrReplaceAll(file_name, {{"\\", "\\\\"}, {"\"", "\\\""}}), " (",
      FormatBytes(report["file_bytes"].get<uint64_t>()), "), ", state,
      ": resident memory of each loader's process\\n"
      "solid: total RSS, dashed: anonymous RSS, dot: first token\"\n",
      "set xlabel '", seconds ? "seconds" : "milliseconds", " since Model::Open() began'\n",
      "set ylabel 'MiB'\nset grid\nset key outside right top\nset xrange [0:*]\nset yrange [0:*]\n",
      "set style data lines\n", "plot ");
  std::vector<std::string> plots;
  for (size_t i = 0; i < chosen.size(); ++i) {
    const std::string& loader = chosen[i]->loader;
    const std::string color = LoaderColor(loader);
    plots.push_back(absl::StrFormat(
        "'%s' index %d using 1:2 lw 2 lc rgb '%s' title '%s total', "
        "'' index %d using 1:3 lw 1.5 dt 2 lc rgb '%s' title '%s anonymous', "
        "'' index %d using 1:2 with points pt 7 ps 0.8 lc rgb '%s' notitle",
        data_path, i, color, loader, i, color, loader, chosen.size() + i, color));
  }
  plots.push_back(absl::StrFormat("%.2f lw 1 dt 3 lc rgb '#444444' title 'file size'",
                                  report["file_bytes"].get<double>() / kMiB));
  absl::StrAppend(&script, absl::StrJoin(plots, ", \\\n     "), "\n");
  std::ofstream(script_path) << script;

  std::string gnuplot = "gnuplot";
  std::vector<char*> argv = {gnuplot.data(), const_cast<char*>(script_path.c_str()), nullptr};
  pid_t pid = 0;
  // gnuplot starts with no signal blocked (this process blocks SIGINT and
  // friends, HandleInterrupts()).
  posix_spawnattr_t attributes;
  ::posix_spawnattr_init(&attributes);
  sigset_t none;
  sigemptyset(&none);
  ::posix_spawnattr_setsigmask(&attributes, &none);
  ::posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK);
  const int e = ::posix_spawnp(&pid, "gnuplot", nullptr, &attributes, argv.data(), environ);
  ::posix_spawnattr_destroy(&attributes);
  absl::Status status;
  if (e != 0) {
    status = format::ErrnoError(e, "gnuplot", "posix_spawnp");
  } else {
    int wait_status = 0;
    ::waitpid(pid, &wait_status, 0);
    if (!WIFEXITED(wait_status) || WEXITSTATUS(wait_status) != 0) {
      status = absl::InternalError(absl::StrCat("gnuplot failed on ", script_path,
                                                " (script kept for inspection)"));
    }
  }
  if (status.ok()) status = chart.Install(/*overwrite=*/true);
  if (status.ok()) std::filesystem::remove_all(dir);
  return status;
}

void PrintText(const json& report, int columns, std::ostream& out) {
  const json& model = report["model"];
  const json& machine = report["machine"];
  const json& method = report["method"];
  // Prose: a "  label: " line wrapped at the terminal, later lines indented.
  const auto prose = [&](absl::string_view label, absl::string_view text) {
    out << WrapText(text, columns, absl::StrCat("  ", label, ": "), "      ");
  };
  out << "zcpack bench: " << report["input"].get<std::string>() << "\n";
  prose("model", absl::StrCat(model["architecture"].get<std::string>(), ", ",
                              model["num_layers"].get<int>(), " layers, hidden ",
                              model["hidden_size"].get<int>(), ", vocab ",
                              model["vocab_size"].get<int>(), "; ",
                              model["tensor_count"].get<int>(), " tensors; ",
                              FormatBytes(report["file_bytes"].get<uint64_t>()), " (",
                              report["file_bytes"].get<uint64_t>(), " bytes; ",
                              model["dtype_summary"].get<std::string>(), ")"));
  prose("machine",
        absl::StrCat(machine["cores"].get<int>(), " cores (", machine.value("cpu", std::string("?")),
                     "), ", FormatBytes(machine.value("mem_total_bytes", uint64_t{0})), " RAM, ",
                     machine.value("kernel", std::string("?")), ", ",
                     FormatBytes(machine.value("disk_free_bytes", uint64_t{0})),
                     " free on the file's disk; load average ",
                     absl::StrFormat("%.2f", report["load_before"][0].get<double>()), " before, ",
                     absl::StrFormat("%.2f", report["load_after"][0].get<double>()), " after"));
  prose("method", method["description"].get<std::string>());
  prose("memory", method["memory"].get<std::string>());
  if (report.contains("cold_read")) {
    const json& c = report["cold_read"];
    prose("cold", method["cold"].get<std::string>());
    prose("cold sequential read",
          absl::StrFormat("read() in 1 MiB requests after eviction, median of %d: %s in %s ms = "
                          "%.0f MB/s; the physical limit for a cold load",
                          c["repeat_count"].get<int>(),
                          FormatBytes(report["file_bytes"].get<uint64_t>()),
                          Num(c["read_ms"].get<double>()), c["bytes_per_s"].get<double>() / 1e6));
    const json& p = c["parallel"];
    prose("cold parallel read",
          absl::StrFormat("%d threads pread() %s pieces after eviction, median of %d: %s ms = "
                          "%.0f MB/s",
                          p["threads"].get<int>(), FormatBytes(p["chunk_bytes"].get<uint64_t>()),
                          c["repeat_count"].get<int>(), Num(p["read_ms"].get<double>()),
                          p["bytes_per_s"].get<double>() / 1e6));
  }
  if (method.contains("warm")) prose("warm", method["warm"].get<std::string>());

  for (const char* state : {"warm", "cold", "budget"}) {
    std::vector<const json*> rows;
    for (const json& row : report["rows"]) {
      if (row["state"] == state) rows.push_back(&row);
    }
    if (state == std::string("budget") && report.contains("budget")) {
      const json& b = report["budget"];
      out << "\n### memory budget " << FormatBytes(b["limit_bytes"].get<uint64_t>()) << " ("
          << b["how"].get<std::string>() << ")\n";
      if (b.contains("skipped")) {
        out << WrapText(b["skipped"].get<std::string>(), columns, "skipped: ", "  ");
        continue;
      }
      out << WrapText(absl::StrCat(b["cgroup"].get<std::string>(), "; ",
                                   b["preparation"].get<std::string>()),
                      columns, "", "");
      if (b.contains("streaming") && b["streaming"].contains("note")) {
        out << WrapText(b["streaming"]["note"].get<std::string>(), columns,
                        "zcpack --memory-budget: ", "  ");
      } else if (b.contains("streaming")) {
        const json& st = b["streaming"];
        const json& plan = st["plan"];
        out << WrapText(absl::StrFormat(
            "%s resident, %s streamed per token (measured over the decode: "
            "%s), ring %s, anonymous planned %s + margin %s; bound = cold read %.0f MB/s / %s = %s "
            "tokens/s",
            FormatBytes(plan["resident_bytes"].get<uint64_t>()),
            FormatBytes(st["streamed_bytes_per_token"].get<uint64_t>()),
            FormatBytes(static_cast<uint64_t>(st["measured_streamed_bytes_per_token"].get<double>())),
            FormatBytes(plan["ring_bytes"].get<uint64_t>()), FormatBytes(plan["anon_bytes"].get<uint64_t>()),
            FormatBytes(plan["margin_bytes"].get<uint64_t>()),
            st["cold_read_bytes_per_second"].get<double>() / 1e6,
            FormatBytes(st["streamed_bytes_per_token"].get<uint64_t>()),
            Num(st["bound_tokens_per_s"].get<double>())),
            columns, "zcpack --memory-budget: ", "  ");
        for (const json& row : st["rows"]) {
          out << absl::StrFormat("  %s: %s tokens/s = %.2f x the bound\n", row["loader"].get<std::string>(),
                                 Num(row["tokens_per_s"].get<double>()), row["of_bound"].get<double>());
        }
      }
    }
    if (rows.empty()) continue;
    if (state != std::string("budget")) {
      double worst = 0, best = 1;
      for (const json* row : rows) {
        for (const json& run : (*row)["runs"]) {
          worst = std::max(worst, run["resident_before"].get<double>());
          best = std::min(best, run["resident_before"].get<double>());
        }
      }
      out << "\n### " << state
          << (state == std::string("cold")
                  ? absl::StrFormat(" (file resident before each run: at most %.1f%%)", 100 * worst)
                  : absl::StrFormat(" (file resident before each run: at least %.1f%%)", 100 * best))
          << "\n";
    }
    const bool budget = state == std::string("budget");
    out << "| loader | " << (budget ? "outcome | " : "")
        << "usable ms | first token ms | tokens/s | peak anon MiB | peak total MiB | "
        << (budget ? "cgroup peak MiB |" : "major faults | minor faults |") << "\n"
        << "|---|" << (budget ? "---|" : "") << "---|---|---|---|---|---|" << (budget ? "" : "---|")
        << "\n";
    for (const json* row : rows) {
      const json& r = *row;
      out << "| " << r["loader"].get<std::string>() << " | ";
      if (r.contains("skipped")) {
        out << "skipped: " << r["skipped"].get<std::string>() << " |\n";
        continue;
      }
      if (budget) {
        std::map<std::string, int> outcomes;
        for (const json& run : r["runs"]) ++outcomes[run["outcome"].get<std::string>()];
        std::vector<std::string> parts;
        for (const auto& [what, count] : outcomes) parts.push_back(absl::StrCat(count, "x ", what));
        out << absl::StrJoin(parts, ", ") << " | ";
      }
      out << Cell(r, "usable_ms", 1) << " | " << Cell(r, "ttft_ms", 1) << " | "
          << Cell(r, "decode_tokens_per_s", 1) << " | ";
      // Failed runs have no child report, but their sampled peaks still count.
      double anon = 0, total = 0, cg = 0;
      for (const json& run : r["runs"]) {
        anon = std::max(anon, run["peak_anon_bytes"].get<double>());
        total = std::max(total, run["peak_total_bytes"].get<double>());
        if (run.contains("cgroup")) cg = std::max(cg, run["cgroup"]["peak_bytes"].get<double>());
      }
      if (budget) {
        out << Num(anon / kMiB) << " (max) | " << Num(total / kMiB) << " (max) | " << Num(cg / kMiB)
            << " |\n";
      } else {
        out << Cell(r, "peak_anon_bytes", 1 / kMiB) << " | " << Cell(r, "peak_total_bytes", 1 / kMiB)
            << " | " << Cell(r, "major_faults", 1, true) << " | " << Cell(r, "minor_faults", 1, true)
            << " |\n";
      }
    }
  }
  const json& logits = report["logits"];
  out << "\n"
      << WrapText(logits["identical"].get<bool>()
                      ? absl::StrCat("identical in all ", logits["run_count"].get<int>(),
                                     " completed runs (xxh3 ", logits["xxh3"].get<std::string>(),
                                     ", argmax ", logits["argmax"].get<int>(), ")")
                      : absl::StrCat("DIFFER between runs: ", logits["detail"].get<std::string>()),
                  columns, "first-token logits: ", "  ");
  // Only with --targets: the project's goals, not the user's.
  if (report.contains("targets") && !report["targets"].empty()) {
    out << "\n### targets\n";
    for (const json& t : report["targets"]) {
      out << WrapText(absl::StrCat(t["target"].get<std::string>(), ": ",
                                   t["value"].get<std::string>()),
                      columns, absl::StrCat("- [", t["met"].get<bool>() ? "met" : "MISSED", "] "),
                      "  ");
    }
  }
  if (!report["notes"].empty()) {
    out << "\nnotes:\n";
    for (const json& n : report["notes"]) out << WrapText(n.get<std::string>(), columns, "- ", "  ");
  }
  if (report.contains("timeline_csv")) {
    out << "timeline: " << report["timeline_csv"].get<std::string>() << "\n";
  }
  if (report.contains("plot")) out << "chart: " << report["plot"].get<std::string>() << "\n";
}

// One row as csv and jsonl give it: the figures of the table, no runs.
struct RowSummary {
  std::string state, loader, skipped;
  int run_count = 0, completed_count = 0;
};

RowSummary SummaryOf(const json& row) {
  RowSummary r;
  r.state = row["state"].get<std::string>();
  r.loader = row["loader"].get<std::string>();
  if (row.contains("skipped")) r.skipped = row["skipped"].get<std::string>();
  r.run_count = static_cast<int>(row["runs"].size());
  for (const json& run : row["runs"]) r.completed_count += run["ok"].get<bool>();
  return r;
}

// An RFC 4180 field: quoted when it holds a comma, a quote or a line break.
std::string CsvField(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  return absl::StrCat("\"", absl::StrReplaceAll(text, {{"\"", "\"\""}}), "\"");
}

void PrintCsv(const json& report, std::ostream& out) {
  std::vector<std::string> header = {"input", "state", "loader", "run_count", "completed_count",
                                     "skipped"};
  for (const char* key : kMetrics) {
    for (const char* stat : {"median", "min", "max"}) header.push_back(absl::StrCat(key, "_", stat));
  }
  out << absl::StrJoin(header, ",") << "\n";
  const std::string input = format::EscapeInvalidUtf8(report["input"].get<std::string>());
  for (const json& row : report["rows"]) {
    const RowSummary r = SummaryOf(row);
    std::vector<std::string> fields = {CsvField(input), r.state, r.loader,
                                       absl::StrCat(r.run_count), absl::StrCat(r.completed_count),
                                       CsvField(r.skipped)};
    for (const char* key : kMetrics) {
      for (const char* stat : {"median", "min", "max"}) {
        const json& figures = row.contains(stat) ? row[stat] : json::object();
        fields.push_back(figures.contains(key) ? absl::StrFormat("%.15g", figures[key].get<double>()) : "");
      }
    }
    out << absl::StrJoin(fields, ",") << "\n";
  }
}

void PrintJsonLines(const json& report, std::ostream& out) {
  for (const json& row : report["rows"]) {
    const RowSummary r = SummaryOf(row);
    json line = {{"input", report["input"]},
                 {"state", r.state},
                 {"loader", r.loader},
                 {"run_count", r.run_count},
                 {"completed_count", r.completed_count},
                 {"median", row.value("median", json::object())},
                 {"min", row.value("min", json::object())},
                 {"max", row.value("max", json::object())}};
    if (!r.skipped.empty()) line["skipped"] = r.skipped;
    out << ReportText("bench", line, -1) << "\n";
  }
}

}  // namespace zcpack::cli::bench

// `zcpack plan`: see plan.h. The sizes come from the runtime's memory plan
// (runtime/memory_plan.h), which shares its size functions with the Session
// and the loaders; this file adds the process's own measured baseline, the
// limit (MemAvailable or --budget), the verdicts and the report.
#include "tools/cli/plan.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "tools/cli/bench_system.h"
#include "tools/cli/input_kind.h"
#include "tools/cli/json_output.h"
#include "zcpack/runtime/memory_plan.h"
#include "zcpack/runtime/model.h"
#include "zcpack/runtime/thread_pool.h"
#include "zcpack/status_macros.h"

namespace zcpack::cli {
namespace {

using nlohmann::json;

constexpr int kDefaultContexts[] = {512, 2048, 8192};
// The device sizes of the capacity table, in GiB.
constexpr uint64_t kDeviceGiB[] = {8, 16, 24, 64, 128};
constexpr runtime::Loader kLoaders[] = {runtime::Loader::kZcpack, runtime::Loader::kMmapNaive,
                                        runtime::Loader::kClassic, runtime::Loader::kPread,
                                        runtime::Loader::kDirect};

absl::StatusOr<std::vector<int>> ParseContexts(const std::vector<std::string>& given) {
  std::vector<int> contexts;
  for (const std::string& text : given) {
    int value = 0;
    if (!absl::SimpleAtoi(text, &value) || value < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("--context: '", text, "' is not a positive number of positions"));
    }
    contexts.push_back(value);
  }
  return contexts;
}

absl::StatusOr<uint64_t> ParseBudget(const std::string& text) {
  if (text.empty()) return 0;
  absl::StatusOr<uint64_t> bytes = bench::ParseByteSize(text);
  if (!bytes.ok()) return absl::InvalidArgumentError(absl::StrCat("--budget: ", bytes.status().message()));
  if (*bytes == 0) return absl::InvalidArgumentError("--budget: give a size above 0");
  return bytes;
}

// This process's own memory now (RssAnon, RssFile of /proc/self/status), in
// bytes: the baseline every loader starts from, since `zcpack bench` runs
// the same program.
bench::ProcMemory OwnMemory() {
  std::ifstream file("/proc/self/status");
  std::stringstream text;
  text << file.rdbuf();
  return bench::ParseProcStatus(text.str());
}

std::string Bytes(uint64_t bytes) { return bench::FormatBytes(bytes); }

// "13.2 B", "870 M": a parameter count.
std::string Parameters(double count) {
  if (count >= 1e9) return absl::StrFormat("%.1f B", count / 1e9);
  if (count >= 1e6) return absl::StrFormat("%.0f M", count / 1e6);
  return absl::StrFormat("%.0f", count);
}

// Whether a loader's peak fits `limit`: "yes" (everything resident), for a
// mapped loader "streams" (its anonymous memory fits, the weights do not all
// stay in memory: pages are read again from disk as they are needed), else
// "no" (a copying loader whose copies do not fit fails to load).
std::string Fits(const runtime::LoaderMemory& loader, uint64_t peak_anon, uint64_t peak_total,
                 uint64_t limit) {
  if (peak_total <= limit) return "yes";
  if (loader.mapped && peak_anon <= limit) return "streams";
  return "no";
}

}  // namespace

absl::Status CheckPlanOptions(const PlanCommandOptions& options) {
  ZCPACK_RETURN_IF_ERROR(ParseContexts(options.contexts).status());
  ZCPACK_RETURN_IF_ERROR(ParseBudget(options.budget).status());
  if (options.batch < 0) {
    return absl::InvalidArgumentError("--batch must not be negative (0: the whole context)");
  }
  return absl::OkStatus();
}

absl::Status RunPlan(const PlanCommandOptions& options, std::ostream& out) {
  ZCPACK_RETURN_IF_ERROR(ExpectContainer(options.path, "plan"));
  ZCPACK_RETURN_IF_ERROR(CheckPlanOptions(options));
  ZCPACK_ASSIGN_OR_RETURN(std::vector<int> contexts, ParseContexts(options.contexts));
  ZCPACK_ASSIGN_OR_RETURN(const uint64_t budget, ParseBudget(options.budget));

  // Opened as `zcpack run` and the bench's zcpack loader open it (the
  // default policy's prefetch thread included), so that the baseline below
  // is theirs; Open() reads no weight.
  ZCPACK_ASSIGN_OR_RETURN(std::unique_ptr<runtime::Model> model,
                          runtime::Model::Open(options.path));
  const bench::ProcMemory own = OwnMemory();
  const uint64_t base_anon = own.rss_anon_kib << 10;
  const uint64_t base_file = (own.rss_file_kib + own.rss_shmem_kib) << 10;
  const format::ModelInfo& m = model->info();
  const uint32_t max_context = m.max_position_embeddings();
  if (contexts.empty()) {
    for (int c : kDefaultContexts) {
      if (max_context == 0 || static_cast<uint32_t>(c) < max_context) contexts.push_back(c);
    }
    if (max_context != 0) contexts.push_back(static_cast<int>(max_context));
  }
  std::sort(contexts.begin(), contexts.end());
  contexts.erase(std::unique(contexts.begin(), contexts.end()), contexts.end());

  const runtime::WeightsFootprint weights = runtime::PlanWeights(*model);
  const uint64_t available = runtime::AvailableMemoryBytes();
  const uint64_t limit = budget > 0 ? budget : available;
  const int threads = runtime::SessionThreads(options.threads);

  json report;
  report["input"] = options.path;
  report["model"] = {{"architecture", m.architecture()},
                     {"num_layers", m.num_layers()},
                     {"hidden_size", m.hidden_size()},
                     {"num_heads", m.num_heads()},
                     {"num_kv_heads", m.num_kv_heads()},
                     {"head_dim", m.head_dim()},
                     {"intermediate_size", m.intermediate_size()},
                     {"vocab_size", m.vocab_size()},
                     {"max_position_embeddings", max_context}};
  report["weights"] = {{"file_bytes", weights.file_bytes},
                       {"tensor_bytes", weights.tensor_bytes},
                       {"parameters", weights.parameters},
                       {"bits_per_weight", weights.bits_per_weight},
                       {"token_read_bytes", weights.token_read_bytes}};
  report["process"] = {
      {"anon_bytes", base_anon},
      {"file_bytes", base_file},
      {"how",
       "measured: RssAnon and RssFile of this zcpack process after opening the container "
       "(code, libraries, parsed manifest), the same program `zcpack bench` runs"}};
  report["mem_available_bytes"] = available;
  report["budget_bytes"] = budget > 0 ? json(budget) : json(nullptr);
  report["limit_bytes"] = limit;
  report["threads"] = threads;
  report["thread_stack_bytes"] = runtime::ThreadPool::WorkerStackBytes();
  // null: each context evaluated whole (contexts[].batch is then the context).
  report["batch"] = options.batch > 0 ? json(options.batch) : json(nullptr);
  report["contexts"] = json::array();

  for (int context : contexts) {
    runtime::MemoryPlanOptions plan_options;
    plan_options.context = context;
    plan_options.batch = options.batch == 0 ? context : std::min(options.batch, context);
    plan_options.threads = options.threads;
    ZCPACK_ASSIGN_OR_RETURN(const runtime::SessionMemory session,
                            runtime::PlanSessionMemory(*model, plan_options));
    json row = {{"context", context},
                {"batch", session.batch},
                {"beyond_model_maximum", max_context != 0 && static_cast<uint32_t>(context) > max_context},
                {"session",
                 {{"kv_cache_bytes", session.kv_cache_bytes},
                  {"rope_tables_bytes", session.rope_tables_bytes},
                  {"logits_bytes", session.logits_bytes},
                  {"small_buffers_bytes", session.small_buffers_bytes},
                  {"batch_scratch_bytes", session.batch_scratch_bytes},
                  {"attention_scratch_bytes", session.attention_scratch_bytes},
                  {"activation_scratch_bytes", session.activation_scratch_bytes},
                  {"total_bytes", session.total_bytes},
                  {"thread_stacks_reserved_bytes", session.thread_stacks_reserved_bytes}}},
                {"loaders", json::array()}};
    for (runtime::Loader l : kLoaders) {
      const runtime::LoaderMemory loader = runtime::PlanLoaderMemory(model->container(), l);
      // The classic loader's peak is inside Open(), before any session
      // exists; the others peak with the session's buffers on top.
      const uint64_t anon =
          base_anon + std::max(loader.open_peak_anon_bytes, loader.weights_anon_bytes + session.total_bytes);
      const uint64_t total = anon + base_file + loader.weights_file_bytes;
      row["loaders"].push_back({{"loader", std::string(runtime::LoaderName(l))},
                                {"open_peak_anon_bytes", loader.open_peak_anon_bytes},
                                {"weights_anon_bytes", loader.weights_anon_bytes},
                                {"weights_file_bytes", loader.weights_file_bytes},
                                {"peak_anon_bytes", anon},
                                {"peak_total_bytes", total},
                                {"fits", Fits(loader, anon, total, limit)}});
    }
    report["contexts"].push_back(std::move(row));
  }

  // Device capacity: the most parameters at this container's bits per weight
  // whose weights, with this process, stay resident in a device of each
  // size: once for the mapped loaders and pread/direct, twice for classic
  // (its whole-file buffer and the copies). The KV cache and scratch come on
  // top (above, per context).
  report["devices"] = json::array();
  for (uint64_t gib : kDeviceGiB) {
    const uint64_t device = gib << 30;
    const double room = device > base_anon + base_file
                            ? static_cast<double>(device - base_anon - base_file)
                            : 0.0;
    const double per_parameter = weights.bits_per_weight / 8.0;
    const double once = per_parameter > 0 ? room / per_parameter : 0.0;
    report["devices"].push_back({{"device_bytes", device},
                                 {"max_parameters",
                                  {{"zcpack", static_cast<uint64_t>(once)},
                                   {"mmap", static_cast<uint64_t>(once)},
                                   {"pread", static_cast<uint64_t>(once)},
                                   {"direct", static_cast<uint64_t>(once)},
                                   {"classic", static_cast<uint64_t>(once / 2)}}}});
  }

  if (options.json) {
    out << ReportText("plan", report) << "\n";
    return absl::OkStatus();
  }

  out << "zcpack plan: " << options.path << "\n"
      << absl::StrFormat("model: %s, %u layers, hidden %u, %u heads (%u KV) x %u, vocab %u,\n",
                         m.architecture(), m.num_layers(), m.hidden_size(), m.num_heads(),
                         m.num_kv_heads(), m.head_dim(), m.vocab_size())
      << "  " << (max_context != 0 ? absl::StrCat("max context ", max_context) : "max context not recorded")
      << "\n"
      << "weights: " << Bytes(weights.file_bytes) << " file, "
      << absl::StrFormat("%.2f bits per weight, %s parameters;\n", weights.bits_per_weight,
                         Parameters(static_cast<double>(weights.parameters)))
      << "  one decoded token reads " << Bytes(weights.token_read_bytes) << "\n"
      << "process: " << Bytes(base_anon) << " anonymous, " << Bytes(base_file)
      << " file-backed\n  (measured: this program after opening the container)\n"
      << "limit: " << Bytes(limit)
      << (budget > 0 ? " (--budget; " + Bytes(available) + " available)" : " (MemAvailable)")
      << "\n"
      << threads << " thread(s); each worker reserves a " << Bytes(runtime::ThreadPool::WorkerStackBytes())
      << " stack (address space,\n  resident only as used); batch: "
      << (options.batch == 0 ? std::string("the whole context in one evaluation")
                             : absl::StrCat(options.batch, " tokens per evaluation"))
      << "\n\n";

  out << "Anonymous memory of a session with its KV cache full (f16 cache):\n";
  out << absl::StrFormat("%8s %7s %11s %11s %11s %11s %11s\n", "context", "batch", "KV cache",
                         "batch", "attention", "kernels", "session");
  out << absl::StrFormat("%8s %7s %11s %11s %11s %11s %11s\n", "", "", "", "scratch", "scratch",
                         "scratch", "total");
  for (const json& row : report["contexts"]) {
    const json& s = row["session"];
    out << absl::StrFormat("%8d %7d %11s %11s %11s %11s %11s%s\n", row["context"].get<int>(),
                           row["batch"].get<int>(), Bytes(s["kv_cache_bytes"]),
                           Bytes(s["batch_scratch_bytes"]), Bytes(s["attention_scratch_bytes"]),
                           Bytes(s["activation_scratch_bytes"]), Bytes(s["total_bytes"]),
                           row["beyond_model_maximum"].get<bool>() ? " *" : "");
  }
  out << "(session total also counts RoPE tables, logits and small buffers; * beyond\n"
         " the model's maximum context)\n\n";

  out << "Peaks of the whole process, per loader (anonymous; total = anonymous +\n"
         "file-backed, the mapped weights included) and whether they fit "
      << Bytes(limit) << ":\n";
  out << absl::StrFormat("%8s  %-8s %12s %12s %12s  %s\n", "context", "loader", "open peak",
                         "peak anon", "peak total", "fits");
  for (const json& row : report["contexts"]) {
    for (const json& l : row["loaders"]) {
      out << absl::StrFormat("%8d  %-8s %12s %12s %12s  %s\n", row["context"].get<int>(),
                             l["loader"].get<std::string>(),
                             l["open_peak_anon_bytes"].get<uint64_t>() > 0
                                 ? Bytes(base_anon + l["open_peak_anon_bytes"].get<uint64_t>())
                                 : std::string("-"),
                             Bytes(l["peak_anon_bytes"]), Bytes(l["peak_total_bytes"]),
                             l["fits"].get<std::string>());
    }
  }
  out << "(streams: runs, but the weights do not all stay in memory and are read\n"
         " again from disk as needed)\n\n";

  out << absl::StrFormat(
      "Largest model whose weights stay resident, at %.2f bits per weight (KV cache\n"
      "and scratch on top):\n",
      weights.bits_per_weight);
  out << absl::StrFormat("%8s %20s %20s %12s\n", "device", "zcpack, mmap", "pread, direct",
                         "classic");
  for (const json& d : report["devices"]) {
    const json& p = d["max_parameters"];
    out << absl::StrFormat("%4u GiB %20s %20s %12s\n", d["device_bytes"].get<uint64_t>() >> 30,
                           Parameters(p["zcpack"].get<double>()),
                           Parameters(p["pread"].get<double>()),
                           Parameters(p["classic"].get<double>()));
  }
  return absl::OkStatus();
}

}  // namespace zcpack::cli

// `zcpack bench-child`: one measured run of `zcpack bench`, in a process of
// its own. Hidden from --help; the parent (bench.cc) starts it and samples
// its memory from outside.
//
// It opens the model with one loader, evaluates the fixed benchmark prompt,
// samples greedily, generates the remaining tokens, and prints one JSON line.
// Timestamps are CLOCK_MONOTONIC nanoseconds (MonotonicNanos()), so that the
// parent can place them on its memory timeline.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "tools/cli/bench_report.h"
#include "tools/cli/bench_system.h"
#include "tools/cli/commands.h"
#include "tools/cli/json_output.h"
#include "xxhash.h"
#include "zcpack/runtime/model.h"
#include "zcpack/runtime/session.h"
#include "zcpack/status_macros.h"

namespace zcpack::cli {
namespace {

std::vector<int32_t> BenchPrompt(uint32_t vocab_size) {
  // "The quick brown fox jumps over the lazy dog" in the Llama 2 vocabulary,
  // after BOS; folded into smaller vocabularies so every shape gets 10 ids.
  static constexpr int32_t kIds[] = {1, 450, 4996, 17354, 1701, 29916, 432, 975, 278, 17366};
  std::vector<int32_t> prompt;
  for (int32_t id : kIds) prompt.push_back(static_cast<int32_t>(static_cast<uint32_t>(id) % vocab_size));
  return prompt;
}

}  // namespace

absl::Status RunBenchChild(const BenchChildOptions& options, std::ostream& out) {
  ZCPACK_ASSIGN_OR_RETURN(const runtime::Loader loader, runtime::ParseLoader(options.loader));
  if (options.tokens < 1) return absl::InvalidArgumentError("-n must be at least 1");
  runtime::OpenOptions open;
  open.loader = loader;  // and the default memory policy
  open.memory.budget_bytes = options.memory_budget;

  const int64_t open_start = bench::MonotonicNanos();
  ZCPACK_ASSIGN_OR_RETURN(std::unique_ptr<runtime::Model> model,
                          runtime::Model::Open(options.path, open));
  const int64_t usable = bench::MonotonicNanos();

  const std::vector<int32_t> prompt = BenchPrompt(model->info().vocab_size());
  runtime::SessionOptions session_options;
  session_options.threads = options.threads;
  ZCPACK_ASSIGN_OR_RETURN(session_options.max_context,
                          runtime::ContextForGeneration(prompt.size(), options.tokens));
  ZCPACK_ASSIGN_OR_RETURN(std::unique_ptr<runtime::Session> session,
                          runtime::Session::Create(*model, session_options));
  runtime::SamplingOptions greedy;
  greedy.temperature = 0.0f;
  runtime::Sampler sampler(greedy);

  ZCPACK_ASSIGN_OR_RETURN(std::span<const float> logits, session->Evaluate(prompt));
  const uint64_t logits_hash = XXH3_64bits(logits.data(), logits.size_bytes());
  const size_t nonfinite = static_cast<size_t>(
      std::count_if(logits.begin(), logits.end(), [](float v) { return !std::isfinite(v); }));
  int32_t token = sampler.Sample(logits);
  const int32_t argmax = token;
  const int64_t first_token = bench::MonotonicNanos();
  const uint64_t streamed_at_first_token = model->streamed_bytes();
  std::vector<int32_t> generated = {token};
  for (int i = 1; i < options.tokens; ++i) {
    ZCPACK_ASSIGN_OR_RETURN(logits, session->Evaluate(std::span<const int32_t>(&token, 1)));
    token = sampler.Sample(logits);
    generated.push_back(token);
  }
  const int64_t end = bench::MonotonicNanos();
  const uint64_t streamed_at_end = model->streamed_bytes();

  std::ifstream status_file("/proc/self/status");
  std::stringstream status_text;
  status_text << status_file.rdbuf();
  const bench::ProcMemory memory = bench::ParseProcStatus(status_text.str());

  const double decode_s = static_cast<double>(end - first_token) * 1e-9;
  nlohmann::json report = {
      {"loader", std::string(runtime::LoaderName(loader))},
      {"usable_ms", static_cast<double>(usable - open_start) * 1e-6},
      {"ttft_ms", static_cast<double>(first_token - open_start) * 1e-6},
      {"decode_tokens_per_s", options.tokens > 1 && decode_s > 0 ? (options.tokens - 1) / decode_s : 0.0},
      {"prompt_tokens", prompt.size()},
      {"generated", generated},
      {"logits_xxh3", absl::StrFormat("%016x", logits_hash)},
      {"argmax", argmax},
      {"nonfinite_logits", nonfinite},
      {"kv_cache_bytes", session->kv_cache_bytes()},
      {"owned_bytes", model->owned_bytes()},
      {"open_start_ns", open_start},
      {"usable_ns", usable},
      {"first_token_ns", first_token},
      {"end_ns", end},
      {"vm_hwm_kib", memory.vm_hwm_kib},
      {"notes", model->notes()}};
  if (nlohmann::json budget = bench::MemoryBudgetJson(*model); !budget.is_null()) {
    // The decode phase's bytes read per token (the prompt's pass and the
    // reads ahead of it come before).
    const uint64_t decode_tokens = static_cast<uint64_t>(options.tokens - 1);
    budget["decode_streamed_bytes_per_token"] =
        decode_tokens > 0 ? static_cast<double>(streamed_at_end - streamed_at_first_token) /
                                static_cast<double>(decode_tokens)
                          : 0.0;
    report["memory_budget"] = std::move(budget);
  }
  out << JsonText(report, -1) << "\n";
  return absl::OkStatus();
}

}  // namespace zcpack::cli

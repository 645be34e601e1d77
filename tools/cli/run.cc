#include <chrono>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "tools/cli/bench_report.h"
#include "tools/cli/bench_system.h"
#include "tools/cli/commands.h"
#include "tools/cli/input_kind.h"
#include "tools/cli/json_output.h"
#include "zcpack/format/container_reader.h"
#include "zcpack/runtime/chat_template.h"
#include "zcpack/runtime/memory_plan.h"
#include "zcpack/runtime/model.h"
#include "zcpack/runtime/session.h"
#include "zcpack/runtime/tokenizer.h"
#include "zcpack/status_macros.h"

namespace zcpack::cli {
namespace {

absl::StatusOr<std::vector<int32_t>> ParseTokens(const std::string& text) {
  std::vector<int32_t> tokens;
  for (absl::string_view piece : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    int32_t id = 0;
    if (!absl::SimpleAtoi(piece, &id)) {
      return absl::InvalidArgumentError(absl::StrCat("--tokens: '", piece, "' is not a token id"));
    }
    tokens.push_back(id);
  }
  if (tokens.empty()) return absl::InvalidArgumentError("--tokens: give at least one token id");
  return tokens;
}

// The flag that sets the context: --context, else -n (with the prompt).
std::string ContextFlag(const RunCommandOptions& options) {
  return options.context > 0 ? absl::StrCat("--context ", options.context)
                             : absl::StrCat("-n ", options.max_tokens);
}

// The KV cache positions of a run: --context, else prompt + n, without
// overflow.
absl::StatusOr<int> ContextFor(const RunCommandOptions& options, size_t prompt_tokens) {
  if (options.context > 0) return options.context;
  absl::StatusOr<int> context = runtime::ContextForGeneration(prompt_tokens, options.max_tokens);
  if (!context.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(ContextFlag(options), ": ", context.status().message()));
  }
  return context;
}

// Whether the prompt is text (--prompt or --chat) rather than token ids.
bool TextPrompt(const RunCommandOptions& options) {
  return !options.prompt.empty() || !options.chat.empty();
}

// The prompt sources given: exactly one of --tokens, --prompt and --chat,
// and --system only with --chat.
absl::Status CheckPromptFlags(const RunCommandOptions& options) {
  const int given = static_cast<int>(!options.tokens.empty()) +
                    static_cast<int>(!options.prompt.empty()) +
                    static_cast<int>(!options.chat.empty());
  if (given == 0) {
    return absl::InvalidArgumentError(
        "give a prompt: --tokens IDS, --prompt TEXT or --chat MESSAGE");
  }
  if (given > 1) {
    return absl::InvalidArgumentError("give only one of --tokens, --prompt and --chat");
  }
  if (!options.system.empty() && options.chat.empty()) {
    return absl::InvalidArgumentError("--system goes with --chat");
  }
  return absl::OkStatus();
}

// The numeric flags that a run cannot use: -n below 1 (-n 0 would evaluate
// nothing and print nothing), a negative --context or --prefetch-layers.
absl::Status CheckCountFlags(const RunCommandOptions& options) {
  if (options.max_tokens < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("-n ", options.max_tokens, ": give at least 1 token to generate"));
  }
  if (options.context < 0) {
    return absl::InvalidArgumentError("--context must not be negative (0: prompt + n)");
  }
  if (options.prefetch_layers < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--prefetch-layers ", options.prefetch_layers,
                     " is negative (0 turns read-ahead off)"));
  }
  return absl::OkStatus();
}

// The sampling settings of the flags.
runtime::SamplingOptions SamplingFor(const RunCommandOptions& options) {
  runtime::SamplingOptions sampling;
  sampling.temperature = options.temperature;
  sampling.top_k = options.top_k;
  sampling.top_p = options.top_p;
  sampling.seed = options.seed;
  return sampling;
}

// The one warning for a context longer than the model was trained for (its
// max_position_embeddings), or "" when it is not. Such a run is allowed, as
// llama.cpp's -c allows it: RoPE works at any position, but nothing says the
// output stays useful past the trained length.
std::string ContextWarning(const RunCommandOptions& options, const format::ModelInfo& model,
                           int context) {
  const absl::Status s = runtime::CheckContextLength(model, context, options.path);
  if (s.ok()) return std::string();
  return absl::StrCat(ContextFlag(options), ": ", s.message(),
                      "; generating anyway, but the output past position ",
                      model.max_position_embeddings(), " may be meaningless");
}

// The container's tokenizer, decoded now; a container whose tokenizers the
// runtime cannot read is an input it rejects (exit 1), not a missing file.
absl::StatusOr<const runtime::Tokenizer*> TokenizerFor(const runtime::Model& model) {
  absl::StatusOr<const runtime::Tokenizer*> tokenizer = model.tokenizer();
  if (tokenizer.status().code() == absl::StatusCode::kNotFound) {
    return absl::FailedPreconditionError(tokenizer.status().message());
  }
  return tokenizer;
}

// The text the model is prompted with: --prompt as given, or --chat (after
// --system) rendered by the vocabulary's chat template.
absl::StatusOr<std::string> PromptText(const RunCommandOptions& options,
                                       const runtime::Tokenizer& tokenizer) {
  if (options.chat.empty()) return options.prompt;
  std::vector<runtime::ChatMessage> messages;
  if (!options.system.empty()) messages.push_back({"system", options.system});
  messages.push_back({"user", options.chat});
  absl::StatusOr<std::string> text = runtime::ApplyChatTemplate(tokenizer.vocabulary(), messages);
  if (!text.ok()) {
    return absl::Status(text.status().code(),
                        absl::StrCat(options.path, ": --chat: ", text.status().message()));
  }
  return text;
}

// The memory budget's figures for --json: null without --memory-budget.
nlohmann::json BudgetReport(const runtime::Model& model, const runtime::GenerateStats& stats) {
  nlohmann::json report = bench::MemoryBudgetJson(model);
  if (!report.is_null()) report["evaluations"] = stats.generated_tokens;
  return report;
}

// The --json fields every run reports (docs/JSON.md, "run"): ids, why
// generation stopped, the sampling settings, timings, threads, loader,
// warnings and notes.
nlohmann::json RunReport(const RunCommandOptions& options, const runtime::Model& model,
                         const runtime::Session& session, const runtime::GenerateStats& stats,
                         const std::vector<int32_t>& prompt, const std::vector<int32_t>& generated,
                         runtime::StopReason stop_reason, const std::string& warning) {
  std::vector<std::string> notes = model.notes();
  notes.insert(notes.end(), session.notes().begin(), session.notes().end());
  const runtime::SamplingOptions sampling = SamplingFor(options);
  return {{"input", options.path},
          {"prompt", prompt},
          {"generated", generated},
          {"stop_reason", runtime::StopReasonName(stop_reason)},
          {"max_tokens", options.max_tokens},
          {"context", session.max_context()},
          {"sampling",
           {{"mode", sampling.temperature > 0 ? "sample" : "greedy"},
            {"temperature", sampling.temperature},
            {"top_k", sampling.top_k},
            {"top_p", sampling.top_p},
            {"seed", sampling.seed}}},
          {"timings",
           {{"open_ms", model.open_seconds() * 1e3},
            {"first_token_ms", stats.first_token_seconds * 1e3}}},
          {"decode_tokens_per_s", stats.tokens_per_second()},
          {"threads", session.threads()},
          {"loader", options.loader},
          {"memory_budget", BudgetReport(model, stats)},
          {"warnings", warning.empty() ? std::vector<std::string>() : std::vector{warning}},
          {"notes", notes}};
}

struct SessionWithWarning {
  std::unique_ptr<runtime::Session> session;
  std::string warning;  // ContextWarning(), "" for none
};

// A session for a prompt of `prompt_tokens`: --context positions, else
// prompt + n. One longer than the model's trained context is allowed, with
// one warning, written to `log` now (stderr) and returned for --json.
absl::StatusOr<SessionWithWarning> CreateSession(const RunCommandOptions& options,
                                                 const runtime::Model& model,
                                                 size_t prompt_tokens, std::ostream& log) {
  runtime::SessionOptions session_options;
  session_options.threads = options.threads;
  ZCPACK_ASSIGN_OR_RETURN(session_options.max_context, ContextFor(options, prompt_tokens));
  SessionWithWarning created;
  created.warning = ContextWarning(options, model.info(), session_options.max_context);
  session_options.allow_longer_context = true;
  ZCPACK_ASSIGN_OR_RETURN(created.session, runtime::Session::Create(model, session_options));
  if (!created.warning.empty()) log << "zcpack run: warning: " << created.warning << "\n";
  return created;
}

// Generates from a text prompt (--prompt or --chat); see RunRun().
absl::Status RunText(const RunCommandOptions& options, runtime::Model& model,
                     const runtime::SamplingOptions& sampling, std::ostream& out,
                     std::ostream& log) {
  ZCPACK_ASSIGN_OR_RETURN(const runtime::Tokenizer* tokenizer, TokenizerFor(model));
  ZCPACK_ASSIGN_OR_RETURN(const std::string text, PromptText(options, *tokenizer));
  runtime::TokenizeOptions tokenize;
  tokenize.add_special = true;
  tokenize.parse_special = !options.chat.empty();  // the template's markers are special tokens
  const std::vector<int32_t> prompt = tokenizer->Tokenize(text, tokenize);
  if (prompt.empty()) return absl::InvalidArgumentError("--prompt: the text gives no tokens");
  if (absl::Status s = runtime::CheckPromptTokens(model.info(), prompt); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(options.path, ": the tokenizer's ids do not fit the model: ", s.message()));
  }
  ZCPACK_ASSIGN_OR_RETURN(const SessionWithWarning created,
                          CreateSession(options, model, prompt.size(), log));
  runtime::Session* session = created.session.get();
  if (!options.json && options.chat.empty()) out << options.prompt << std::flush;
  ZCPACK_ASSIGN_OR_RETURN(
      const runtime::TextGeneration result,
      runtime::GenerateText(*session, *tokenizer, prompt, options.max_tokens, sampling,
                            [&](int32_t, absl::string_view piece) {
                              if (!options.json) out << piece << std::flush;
                              return true;
                            }));
  const runtime::GenerateStats& stats = result.stats;
  if (options.json) {
    nlohmann::json j = RunReport(options, model, *session, stats, result.prompt_tokens,
                                 result.generated_tokens, result.stop_reason, created.warning);
    j["prompt_text"] = text;
    j["text"] = result.text;
    out << ReportText("run", j) << "\n";
    return absl::OkStatus();
  }
  out << "\n" << std::flush;
  if (options.quiet) return absl::OkStatus();
  log << absl::StrFormat(
      "stopped: %s after %d tokens; %s loader: open %.3f ms, first token %.1f ms (%d prompt "
      "tokens), %.1f tokens/s\n",
      runtime::StopReasonName(result.stop_reason), stats.generated_tokens, options.loader,
      model.open_seconds() * 1e3, stats.first_token_seconds * 1e3, stats.prompt_tokens,
      stats.tokens_per_second());
  for (const std::string& note : model.notes()) log << "note: " << note << "\n";
  for (const std::string& note : session->notes()) log << "note: " << note << "\n";
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckRunOptions(const RunCommandOptions& options) {
  if (absl::Status s = runtime::CheckSamplingOptions(SamplingFor(options)); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--", s.message()));
  }
  ZCPACK_RETURN_IF_ERROR(CheckPromptFlags(options));
  // A text prompt's length is known once tokenized (RunRun()); until then
  // the checks below count it as one token.
  std::vector<int32_t> prompt = {0};
  if (!TextPrompt(options)) {
    ZCPACK_ASSIGN_OR_RETURN(prompt, ParseTokens(options.tokens));
  }
  ZCPACK_RETURN_IF_ERROR(CheckCountFlags(options));
  if (absl::Status s = runtime::ParseLoader(options.loader).status(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--loader: ", s.message()));
  }
  if (absl::Status s = runtime::ParseAdvice(options.advice).status(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--advice: ", s.message()));
  }
  ZCPACK_ASSIGN_OR_RETURN(const uint64_t budget, bench::ParseMemoryBudget(options.memory_budget));
  if (budget > 0 && options.loader != "zcpack") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--memory-budget applies to the zcpack loader, not --loader ", options.loader));
  }
  ZCPACK_RETURN_IF_ERROR(ContextFor(options, prompt.size()).status());
  // The model's own limits, from the header and manifest (no tensor data is
  // read); a file that does not open is RunRun()'s to report.
  const auto container = format::Container::Open(options.path);
  if (!container.ok()) return absl::OkStatus();
  const format::ModelInfo& model = (*container)->manifest().model();
  if (TextPrompt(options) && (*container)->manifest().tokenizers().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        options.path, " carries no tokenizer, so --", options.chat.empty() ? "prompt" : "chat",
        " cannot be used: give --tokens (token ids), or convert again from a source that has "
        "one (a GGUF file, a folder with tokenizer.json or tokenizer.model) or with --tokenizer "
        "FILE"));
  }
  if (absl::Status s = runtime::CheckPromptTokens(model, prompt); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--tokens: ", s.message()));
  }
  // A context longer than the model's trained one is allowed, with a warning
  // (ContextWarning()) once the session is created.
  return absl::OkStatus();
}

absl::Status RunRun(const RunCommandOptions& options, std::ostream& out, std::ostream& log) {
  ZCPACK_RETURN_IF_ERROR(CheckPromptFlags(options));
  std::vector<int32_t> prompt;
  if (!TextPrompt(options)) {
    ZCPACK_ASSIGN_OR_RETURN(prompt, ParseTokens(options.tokens));
  }
  ZCPACK_RETURN_IF_ERROR(CheckCountFlags(options));
  ZCPACK_RETURN_IF_ERROR(ExpectContainer(options.path, "run"));
  runtime::OpenOptions open;
  ZCPACK_ASSIGN_OR_RETURN(open.loader, runtime::ParseLoader(options.loader));
  ZCPACK_ASSIGN_OR_RETURN(open.memory.advice, runtime::ParseAdvice(options.advice));
  open.memory.prefetch_layers = options.prefetch_layers;
  open.memory.populate = options.populate;
  open.memory.lock = options.mlock;
  ZCPACK_ASSIGN_OR_RETURN(open.memory.budget_bytes, bench::ParseMemoryBudget(options.memory_budget));
  open.verify_checksums = options.verify;
  ZCPACK_ASSIGN_OR_RETURN(std::unique_ptr<runtime::Model> model,
                          runtime::Model::Open(options.path, open));
  const runtime::SamplingOptions sampling = SamplingFor(options);
  if (TextPrompt(options)) return RunText(options, *model, sampling, out, log);
  ZCPACK_ASSIGN_OR_RETURN(const SessionWithWarning created,
                          CreateSession(options, *model, prompt.size(), log));
  runtime::Session* session = created.session.get();
  runtime::GenerateStats stats;
  ZCPACK_ASSIGN_OR_RETURN(const std::vector<int32_t> generated,
                          runtime::Generate(*session, prompt, options.max_tokens, sampling,
                                            options.stop_at_eos, &stats));
  // Generate() stops early only at the end-of-sequence id (--stop-at-eos).
  const runtime::StopReason stop_reason =
      static_cast<int>(generated.size()) < options.max_tokens
          ? runtime::StopReason::kEndOfGeneration
          : runtime::StopReason::kMaxTokens;
  if (options.json) {
    out << ReportText("run", RunReport(options, *model, *session, stats, prompt, generated,
                                       stop_reason, created.warning))
        << "\n";
    return absl::OkStatus();
  }
  out << "generated: " << absl::StrJoin(generated, ",") << "\n";
  out << "stopped: " << runtime::StopReasonName(stop_reason) << " after " << generated.size()
      << " tokens\n";
  out << absl::StrFormat("%s loader: open %.3f ms, first token %.1f ms (%d prompt tokens), %.1f tokens/s\n",
                         options.loader, model->open_seconds() * 1e3,
                         stats.first_token_seconds * 1e3,
                         stats.prompt_tokens, stats.tokens_per_second());
  if (const runtime::BudgetPlan* plan = model->budget_plan(); plan != nullptr && plan->streams) {
    out << absl::StrFormat("memory budget: %d bytes streamed per token, %d bytes read over %d "
                           "evaluations\n",
                           plan->streamed_bytes_per_token, model->streamed_bytes(),
                           stats.generated_tokens);
  }
  for (const std::string& note : model->notes()) out << "note: " << note << "\n";
  for (const std::string& note : session->notes()) out << "note: " << note << "\n";
  return absl::OkStatus();
}

}  // namespace zcpack::cli

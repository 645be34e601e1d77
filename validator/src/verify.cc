#include "zcpack/validator/verify.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "against.h"
#include "byte_source.h"
#include "integrity.h"
#include "report_builder.h"
#include "structure.h"
#include "zcpack/format/threads.h"
#include "zcpack/runtime/model.h"
#include "zcpack/runtime/session.h"
#include "zcpack/status_macros.h"

namespace zcpack::validator {
namespace {

using Clock = std::chrono::steady_clock;
using internal::ReportBuilder;

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Codes with which the reader rejects a file's contents (format/SPEC.md,
// "Errors"); anything else it returns is about the system, not the file.
bool MeansUnsound(absl::StatusCode code) {
  return code == absl::StatusCode::kInvalidArgument || code == absl::StatusCode::kDataLoss ||
         code == absl::StatusCode::kUnimplemented || code == absl::StatusCode::kOutOfRange;
}

// Opens the container with format::Container, for the "reader" check.
using ReaderOpen = std::function<absl::Status(const format::ReaderOptions&)>;

// The smoke inference: opens the file with the runtime (cheap checks only)
// and generates `tokens` greedily from the BOS id (or 0). Generate() fails
// with DataLoss on a non-finite logit; any failure becomes a problem.
void SmokeRun(const std::string& path, int tokens, ReportBuilder& builder) {
  builder.Ran("smoke_run");
  auto model = runtime::Model::Open(path);
  if (!model.ok()) {
    builder.Add("smoke_run", "", std::nullopt,
                absl::StrCat("the runtime cannot open it: ", model.status().message()));
    return;
  }
  auto session = runtime::Session::Create(**model, {.max_context = tokens + 1, .threads = 0});
  if (!session.ok()) {
    builder.Add("smoke_run", "", std::nullopt, std::string(session.status().message()));
    return;
  }
  const int32_t bos = (*model)->info().bos_token_id();
  const std::vector<int32_t> prompt = {
      bos >= 0 && static_cast<uint32_t>(bos) < (*model)->info().vocab_size() ? bos : 0};
  auto generated = runtime::Generate(**session, prompt, tokens, runtime::SamplingOptions{});
  if (!generated.ok()) {
    builder.Add("smoke_run", "", std::nullopt,
                absl::StrCat("generation failed: ", generated.status().message()));
  }
}

absl::StatusOr<VerifyReport> RunVerify(const internal::ByteSource& source,
                                       const ReaderOpen& reader_open,
                                       const VerifyOptions& options,
                                       const std::string* path = nullptr) {
  const auto start = Clock::now();
  VerifyReport report;
  report.path = source.name();
  report.level = options.level;
  report.against = options.against;
  report.max_rmse = options.max_rmse;
  report.min_snr_db = options.min_snr_db;
  report.file_size = source.size();
  const int threads = format::ThreadsFor(options.threads);
  report.threads = threads;
  ReportBuilder builder(&report, options.max_problems);

  source.AdviseRandom();
  ZCPACK_ASSIGN_OR_RETURN(const internal::ContainerLayout layout,
                          internal::CheckStructure(source, options.limits, builder));
  if (layout.table_checked) {
    report.tensor_count = static_cast<uint64_t>(layout.manifest.tensors_size());
    for (const format::TensorEntry& t : layout.manifest.tensors()) report.tensor_bytes += t.nbytes();
    const uint64_t found = builder.GroupProblems("header") + builder.GroupProblems("manifest") +
                           builder.GroupProblems("tensor_table");
    if (found == 0) {
      builder.Ran("reader");
      format::ReaderOptions reader_options;
      reader_options.limits = options.limits;
      if (absl::Status opened = reader_open(reader_options); !opened.ok()) {
        if (!MeansUnsound(opened.code())) return opened;
        builder.Add("reader", "", std::nullopt, std::string(opened.message()));
      }
    } else {
      builder.Skip("reader", "not run: the checks above found problems");
    }
  }
  internal::CheckModel(layout, builder);
  report.structure_seconds = SecondsSince(start);

  if (options.level == VerifyLevel::kStructure) {
    builder.SkipGroup("integrity", "not run: --level structure");
  } else if (layout.table_checked) {
    const auto integrity_start = Clock::now();
    source.AdviseSequential();
    ZCPACK_RETURN_IF_ERROR(internal::CheckIntegrity(source, layout, threads, options.chunk_bytes,
                                                    options, builder, &report));
    report.integrity_seconds = SecondsSince(integrity_start);
  }

  if (options.against.empty()) {
    builder.SkipGroup("source", "not run: no --against SOURCE");
  } else if (layout.table_checked) {
    const auto against_start = Clock::now();
    ZCPACK_RETURN_IF_ERROR(
        internal::CompareWithSource(source, layout, options, threads, builder, &report));
    report.against_seconds = SecondsSince(against_start);
  }
  if (options.run_tokens <= 0 || path == nullptr) {
    builder.SkipGroup("inference", path == nullptr ? "not run: an in-memory container"
                                                   : "not run: no --run");
  } else if (report.problem_count > 0) {
    builder.SkipGroup("inference", "not run: the checks above found problems");
  } else {
    SmokeRun(*path, options.run_tokens, builder);
  }
  builder.Finish();
  report.total_seconds = SecondsSince(start);
  return report;
}

}  // namespace

absl::string_view VerifyLevelName(VerifyLevel level) {
  return level == VerifyLevel::kStructure ? "structure" : "full";
}

absl::StatusOr<VerifyLevel> ParseVerifyLevel(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower == "structure") return VerifyLevel::kStructure;
  if (lower == "full") return VerifyLevel::kFull;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown level '", name, "'; expected structure or full"));
}

absl::string_view CheckResultName(CheckResult result) {
  switch (result) {
    case CheckResult::kPass: return "pass";
    case CheckResult::kFail: return "fail";
    case CheckResult::kSkipped: return "skipped";
  }
  return "skipped";
}

std::vector<std::string> AllCheckNames() {
  std::vector<std::string> names;
  for (const internal::CheckInfo& c : internal::AllChecks()) names.emplace_back(c.name);
  return names;
}

absl::StatusOr<VerifyReport> Verify(const std::string& path, const VerifyOptions& options) {
  ZCPACK_ASSIGN_OR_RETURN(std::unique_ptr<internal::ByteSource> source,
                          internal::ByteSource::OpenFile(path, options.data_access));
  const ReaderOpen reader_open = [&path](const format::ReaderOptions& reader_options) {
    return format::Container::Open(path, reader_options).status();
  };
  return RunVerify(*source, reader_open, options, &path);
}

absl::StatusOr<VerifyReport> VerifyBuffer(std::span<const uint8_t> bytes, std::string name,
                                          const VerifyOptions& options) {
  const std::unique_ptr<internal::ByteSource> source =
      internal::ByteSource::FromBuffer(bytes, name);
  const ReaderOpen reader_open = [bytes, &name](const format::ReaderOptions& reader_options) {
    return format::Container::OpenBuffer(bytes, name, reader_options).status();
  };
  return RunVerify(*source, reader_open, options);
}

}  // namespace zcpack::validator

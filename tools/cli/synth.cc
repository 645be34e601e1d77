#include <sys/stat.h>

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "tools/cli/commands.h"
#include "tools/cli/json_output.h"
#include "tools/cli/progress.h"
#include "tools/cli/units.h"
#include "zcpack/converter/synth.h"
#include "zcpack/format/dtype.h"
#include "zcpack/status_macros.h"

namespace zcpack::cli {

namespace {

// The synthesizer's options from the command's, checked as Synthesize()
// would check them before writing anything.
absl::StatusOr<converter::SynthOptions> SynthesizerOptions(const SynthCommandOptions& options) {
  if (options.out_dir.empty()) return absl::InvalidArgumentError("--out DIR is required");
  converter::SynthOptions synth;
  synth.shape = options.shape;
  synth.out_dir = options.out_dir;
  absl::StatusOr<format::DType> dtype = format::ParseDType(options.dtype);
  if (!dtype.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--dtype: ", dtype.status().message()));
  }
  synth.dtype = *dtype;
  synth.seed = options.seed;
  synth.threads = options.threads;
  synth.overwrite = options.force;
  ZCPACK_RETURN_IF_ERROR(converter::CheckSynthOptions(synth));
  return synth;
}

}  // namespace

absl::Status CheckSynthOptions(const SynthCommandOptions& options) {
  return SynthesizerOptions(options).status();
}

absl::Status RunSynth(const SynthCommandOptions& options, std::ostream& out) {
  ZCPACK_ASSIGN_OR_RETURN(converter::SynthOptions synth, SynthesizerOptions(options));
  ProgressLine progress(!options.quiet && !options.json);
  if (progress.enabled()) {
    synth.progress = [&progress](const converter::SynthProgress& p) {
      progress.Update({"synth", p.bytes_done, p.bytes_total, p.files_done, p.files_total, "files",
                       p.seconds});
    };
  }
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<converter::SynthResult> synthesized = converter::Synthesize(synth);
  progress.Finish();
  ZCPACK_ASSIGN_OR_RETURN(const converter::SynthResult result, std::move(synthesized));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (options.json) {
    // docs/JSON.md, "synth".
    nlohmann::json j = {{"output", options.out_dir},
                        {"shape", options.shape},
                        {"dtype", options.dtype},
                        {"seed", options.seed},
                        {"parameters", result.parameters},
                        {"weight_bytes", result.weight_bytes},
                        {"files", result.files},
                        {"notes", result.notes},
                        {"timings", {{"total_ms", seconds * 1e3}}}};
    out << ReportText("synth", j) << "\n";
  } else if (!options.quiet) {
    for (const std::string& note : result.notes) out << "note: " << note << "\n";
    out << absl::StrFormat("synth %s: %d parameters, %.1f MiB of %s weights in %.2f s\n",
                           options.shape, result.parameters,
                           result.weight_bytes / 1048576.0, options.dtype, seconds);
    for (const auto& f : result.files) {
      out << "  " << f;
      struct stat st;
      if (options.verbose && ::stat(f.c_str(), &st) == 0) {
        out << " (" << FormatBytes(static_cast<uint64_t>(st.st_size)) << ")";
      }
      out << "\n";
    }
  }
  return absl::OkStatus();
}

}  // namespace zcpack::cli

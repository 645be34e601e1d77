#include <unistd.h>

#include <cstdio>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "tools/cli/commands.h"
#include "tools/cli/input_kind.h"
#include "tools/cli/json_output.h"
#include "tools/cli/progress.h"
#include "tools/cli/suggest.h"
#include "tools/cli/terminal.h"
#include "tools/cli/units.h"
#include "zcpack/converter/convert.h"
#include "zcpack/converter/plan.h"
#include "zcpack/format/dtype.h"
#include "zcpack/format/row_groups.h"
#include "zcpack/format/utf8.h"
#include "zcpack/status_macros.h"

namespace zcpack::cli {
namespace {

std::string Mib(double bytes) { return absl::StrFormat("%.1f MiB", bytes / 1048576.0); }

// The --json report (docs/JSON.md, "convert").
nlohmann::json ReportJson(const std::string& input, const converter::ConvertReport& r) {
  nlohmann::json tensors = nlohmann::json::array();
  for (const auto& t : r.tensors) {
    nlohmann::json j = {{"name", t.name},
                        {"layer", t.layer},
                        {"source_dtype", std::string(format::DTypeName(t.source_dtype))},
                        {"dtype", std::string(format::DTypeName(t.dtype))},
                        {"layout", std::string(format::LayoutName(t.layout))},
                        {"shape", t.shape},
                        {"offset", t.offset},
                        {"source_bytes", t.source_bytes},
                        {"bytes", t.nbytes}};
    // A kept quantized tensor has no error figures: its rounding error is the
    // source's, which zcpack cannot measure without the original weights.
    if (format::IsQuantized(t.source_dtype) && !t.has_stats) j["kept_source_blocks"] = true;
    if (t.has_stats) j["quant_stats"] = QuantStatsJson(t.stats);
    if (!t.fallback_reason.empty()) j["fallback"] = t.fallback_reason;
    tensors.push_back(std::move(j));
  }
  return {{"input", input},
          {"output", r.output},
          {"sources", r.source_files},
          {"source_bytes", r.source_bytes},
          {"output_bytes", r.output_bytes},
          {"parameters", r.weights},
          {"quantized_parameters", r.quantized_weights},
          {"bits_per_weight", r.bits_per_weight},
          {"quantized_bits_per_weight", r.quantized_bits_per_weight},
          {"threads", r.threads},
          {"notes", r.notes},
          {"warnings", r.warnings},
          {"timings", {{"open_ms", r.open_seconds * 1e3},
                       {"convert_ms", r.convert_seconds * 1e3},
                       {"finish_ms", r.finish_seconds * 1e3},
                       {"total_ms", r.total_seconds * 1e3}}},
          {"tensors", std::move(tensors)}};
}

void PrintText(const converter::ConvertReport& r, bool verbose, std::ostream& out) {
  for (const std::string& note : r.notes) out << "note: " << note << "\n";
  size_t quantized = 0, fallbacks = 0, kept = 0;
  double worst_snr = 1e18;
  std::string worst;
  for (const auto& t : r.tensors) {
    if (format::IsQuantized(t.source_dtype) && !t.has_stats) ++kept;
    if (format::IsQuantized(t.dtype)) {
      ++quantized;
      if (t.has_stats && t.stats.snr_db() < worst_snr) {
        worst_snr = t.stats.snr_db();
        worst = t.name;
      }
    }
    if (!t.fallback_reason.empty()) {
      ++fallbacks;
      out << "note: " << t.name << ": " << t.fallback_reason << "\n";
    }
  }
  out << absl::StrFormat(
      "wrote %s: %s from %s of source in %.2f s (%.0f MiB/s)\n"
      "  %d tensors, %d quantized (%.2f bits/weight), %d kept as float, %d fallbacks\n"
      "  %.3f bits per weight overall\n",
      r.output, Mib(r.output_bytes), Mib(r.source_bytes), r.total_seconds,
      r.total_seconds > 0 ? r.source_bytes / 1048576.0 / r.total_seconds : 0.0, r.tensors.size(),
      quantized, r.quantized_bits_per_weight, r.tensors.size() - quantized, fallbacks,
      r.bits_per_weight);
  if (kept > 0) {
    out << absl::StrFormat(
        "  %d quantized tensors kept byte for byte from the source (no error figures: their\n"
        "  rounding error is the source's)\n",
        kept);
  }
  if (!worst.empty()) out << absl::StrFormat("  lowest SNR %.1f dB (%s)\n", worst_snr, worst);
  if (!verbose) return;
  for (const auto& t : r.tensors) {
    std::string line = absl::StrFormat(
        "  tensor %s: %s -> %s [%s], %s at offset %d", t.name, format::DTypeName(t.source_dtype),
        format::DTypeName(t.dtype), absl::StrJoin(t.shape, "x"), FormatBytes(t.nbytes), t.offset);
    if (t.has_stats) {
      absl::StrAppend(&line, absl::StrFormat(", SNR %.1f dB, RMSE %.3g", t.stats.snr_db(),
                                             t.stats.rmse()));
    }
    out << line << "\n";
  }
}

// The value of --quant (`with_keep`) or --output-quant: one of the types the
// converter produces (converter::kConversionTargets). Anything else is
// InvalidArgument naming the flag and the choices, and saying what the value
// probably meant: llama.cpp's names for its mixes (q4_k_m: "did you mean
// q4_k?"), a block type zcpack reads but does not produce (bf16, q6_k, ...),
// or the nearest choice by spelling.
absl::StatusOr<format::DType> ParseTargetFlag(absl::string_view flag, const std::string& value,
                                              bool with_keep) {
  std::vector<std::string> choices;
  if (with_keep) choices.push_back("keep");
  for (const format::DType d : converter::kConversionTargets) {
    choices.push_back(std::string(format::DTypeName(d)));
  }
  const absl::StatusOr<format::DType> dtype = format::ParseDType(value);
  if (dtype.ok() && converter::IsConversionTarget(*dtype)) return *dtype;
  const std::string give =
      absl::StrCat("give ", with_keep ? "keep, " : "", converter::ConversionTargetList());
  const std::string lower = absl::AsciiStrToLower(value);
  std::string why;
  if (absl::StartsWith(lower, "q4_k_")) {
    why = absl::StrCat(
        "llama.cpp's ", absl::AsciiStrToUpper(value),
        " is a mix of block types; did you mean q4_k? (zcpack's mix: every matrix q4_k, the "
        "output head q8_0 (--output-quant), 1-D tensors as they are; a ",
        absl::AsciiStrToUpper(value), " GGUF file is repacked as it is with --quant keep)");
  } else if (dtype.ok()) {
    why = absl::StrCat("zcpack reads ", format::DTypeName(*dtype),
                       " tensors (a GGUF source keeps them with --quant keep) but does not "
                       "convert to ", format::DTypeName(*dtype));
  } else if (absl::StartsWith(lower, "q2_k") || absl::StartsWith(lower, "q3_k") ||
             absl::StartsWith(lower, "q5_k") || absl::StartsWith(lower, "q6_k") ||
             absl::StartsWith(lower, "iq")) {
    why = absl::StrCat("llama.cpp's ", absl::AsciiStrToUpper(value),
                       " is not a type zcpack converts to; the nearest are q4_k (4.5 bits per "
                       "weight) and q8_0 (8.5)");
  } else {
    why = absl::StrCat("'", value, "' is not a type zcpack converts to",
                       DidYouMean(value, choices));
  }
  return absl::InvalidArgumentError(absl::StrCat(flag, " ", value, ": ", why, "; ", give));
}

// The --layout value; InvalidArgument naming the flag and the accepted values.
absl::StatusOr<format::TensorLayout> ParseLayoutFlag(const std::string& layout) {
  absl::StatusOr<format::TensorLayout> parsed = format::ParseLayout(layout);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--layout: '", layout, "' is not a layout; expected row-groups or row-major"));
  }
  return parsed;
}

// The converter's options from the command's, checked as Convert() would
// check them before reading the source.
absl::StatusOr<converter::ConvertOptions> ConverterOptions(const ConvertCommandOptions& options) {
  converter::ConvertOptions convert;
  convert.source = options.source;
  convert.output = options.output;
  if (convert.output.empty()) return absl::InvalidArgumentError("-o OUT is required");
  if (options.quant == "keep") {
    convert.keep_source_dtypes = true;
  } else if (!options.quant.empty()) {
    ZCPACK_ASSIGN_OR_RETURN(convert.quant,
                            ParseTargetFlag("--quant", options.quant, /*with_keep=*/true));
  }
  if (!options.output_quant.empty()) {
    ZCPACK_ASSIGN_OR_RETURN(convert.output_quant, ParseTargetFlag("--output-quant",
                                                                  options.output_quant,
                                                                  /*with_keep=*/false));
  }
  convert.threads = options.threads;
  convert.alignment = options.alignment;
  for (const std::string& p : options.keep_f16) {
    // Recorded in the container, whose strings must be UTF-8; checked here
    // too so that the message names the flag.
    if (!format::IsValidUtf8(p)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--keep-f16 '", format::EscapeInvalidUtf8(p), "' is not valid UTF-8"));
    }
    if (!p.empty()) convert.keep_f16.push_back(p);
  }
  convert.allow_nonfinite = options.allow_nonfinite;
  convert.tokenizer = options.tokenizer;
  ZCPACK_ASSIGN_OR_RETURN(convert.matrix_layout, ParseLayoutFlag(options.layout));
  convert.overwrite = options.force;
  ZCPACK_RETURN_IF_ERROR(converter::CheckConvertOptions(convert));
  return convert;
}

}  // namespace

absl::Status CheckConvertOptions(const ConvertCommandOptions& options) {
  if (options.to == "gguf") return CheckConvertToGgufOptions(options);
  if (!options.to.empty() && options.to != "container") {
    return absl::InvalidArgumentError(
        absl::StrCat("--to: '", options.to, "' is not an output kind; expected container or gguf"));
  }
  return ConverterOptions(options).status();
}

absl::Status RunConvert(const ConvertCommandOptions& options, std::ostream& out) {
  if (options.to == "gguf") return RunConvertToGguf(options, out);
  ZCPACK_ASSIGN_OR_RETURN(converter::ConvertOptions convert, ConverterOptions(options));
  ZCPACK_RETURN_IF_ERROR(ExpectCheckpoint(options.source));
  ProgressLine progress(!options.quiet && !options.json);
  if (progress.enabled()) {
    convert.progress = [&progress](const converter::ConvertProgress& p) {
      progress.Update({"convert", p.source_bytes_done, p.source_bytes_total, p.tensors_done,
                       p.tensors_total, "tensors", p.seconds});
    };
  }
  auto report = converter::Convert(convert);
  progress.Finish();
  if (!report.ok()) return report.status();
  // Warnings go to stderr whatever the output mode (--quiet and --json
  // included): they are about the output's quality, not progress.
  for (const std::string& warning : report->warnings) {
    std::fprintf(stderr, "zcpack convert: warning: %s\n", warning.c_str());
  }
  if (options.json) {
    out << ReportText("convert", ReportJson(options.source, *report)) << "\n";
  } else if (!options.quiet) {
    std::ostringstream text;
    PrintText(*report, options.verbose, text);
    out << FitToTerminal(text.str(), STDOUT_FILENO);
  }
  return absl::OkStatus();
}

}  // namespace zcpack::cli

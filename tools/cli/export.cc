// `zcpack export` (container -> GGUF) and `zcpack convert --to gguf` (GGUF ->
// GGUF with zcpack's layout): both write GGUF through the exporter module.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "tools/cli/commands.h"
#include "tools/cli/input_kind.h"
#include "tools/cli/json_output.h"
#include "zcpack/converter/gguf.h"
#include "zcpack/exporter/align_gguf.h"
#include "zcpack/exporter/export.h"
#include "zcpack/exporter/gguf_writer.h"
#include "zcpack/format/posix_file.h"
#include "zcpack/format/utf8.h"
#include "tools/cli/terminal.h"
#include "tools/cli/units.h"
#include "zcpack/status_macros.h"

namespace zcpack::cli {
namespace {

std::string Mib(double bytes) { return absl::StrFormat("%.1f MiB", bytes / 1048576.0); }

// The --json report of export and convert --to gguf (docs/JSON.md).
nlohmann::json ReportJson(const std::string& input, const exporter::ExportReport& r) {
  nlohmann::json tensors = nlohmann::json::array();
  for (const exporter::ExportedTensor& t : r.tensors) {
    tensors.push_back({{"name", t.name},
                       {"source_name", t.source_name},
                       {"type", t.ggml_type},
                       {"offset", t.offset},
                       {"bytes", t.nbytes},
                       {"rope_permuted", t.rope_permuted},
                       {"widened_to_f32", t.widened}});
  }
  return {{"input", input},
          {"output", r.output},
          {"alignment", r.alignment},
          {"output_bytes", r.output_bytes},
          {"tensor_bytes", r.tensor_bytes},
          {"tokenizer", r.tokenizer},
          {"notes", r.notes},
          {"timings", {{"total_ms", r.seconds * 1e3}}},
          {"tensors", std::move(tensors)}};
}

void PrintText(const exporter::ExportReport& r, bool verbose, std::ostream& out) {
  for (const std::string& note : r.notes) out << "note: " << note << "\n";
  const size_t permuted = std::count_if(r.tensors.begin(), r.tensors.end(),
                                        [](const auto& t) { return t.rope_permuted; });
  const size_t widened = std::count_if(r.tensors.begin(), r.tensors.end(),
                                       [](const auto& t) { return t.widened; });
  out << absl::StrFormat(
      "wrote %s: %s, %d tensors at %d-byte alignment in forward-pass order, in %.2f s\n"
      "  tokenizer: %s\n",
      r.output, Mib(r.output_bytes), r.tensors.size(), r.alignment, r.seconds, r.tokenizer);
  if (permuted > 0) {
    out << absl::StrFormat("  %d Q/K tensors permuted from the half-split RoPE layout to ggml's\n",
                           permuted);
  }
  if (widened > 0) {
    out << absl::StrFormat("  %d 1-D f16/bf16 tensors widened to f32 (llama.cpp's norms)\n",
                           widened);
  }
  if (!verbose) return;
  for (const exporter::ExportedTensor& t : r.tensors) {
    out << absl::StrFormat("  tensor %s: %s, %s at offset %d%s%s\n", t.name, t.ggml_type,
                           FormatBytes(t.nbytes), t.offset,
                           t.rope_permuted ? ", RoPE-permuted" : "",
                           t.widened ? ", widened to f32" : "");
  }
}

absl::Status Print(const char* command, const std::string& input, const exporter::ExportReport& r,
                   bool json, bool quiet, bool verbose, std::ostream& out) {
  if (json) {
    out << ReportText(command, ReportJson(input, r)) << "\n";
  } else if (!quiet) {
    std::ostringstream text;
    PrintText(r, verbose, text);
    out << FitToTerminal(text.str(), STDOUT_FILENO);
  }
  return absl::OkStatus();
}

exporter::ExportOptions ExporterOptions(const ExportCommandOptions& options) {
  exporter::ExportOptions e;
  e.container = options.path;
  e.output = options.output;
  e.alignment = options.alignment;
  e.overwrite = options.force;
  return e;
}

}  // namespace

absl::Status CheckExportOptions(const ExportCommandOptions& options) {
  return exporter::CheckExportOptions(ExporterOptions(options));
}

absl::Status RunExport(const ExportCommandOptions& options, std::ostream& out) {
  if (DetectInputKind(options.path) == InputKind::kGguf) {
    // Already GGUF: the layout alone is one convert away.
    const std::string shown = format::EscapeInvalidUtf8(options.path);
    return absl::InvalidArgumentError(absl::StrCat(
        shown, " is already a GGUF file; export reads a zcpack container. For the "
        "page-aligned, forward-pass-ordered GGUF layout run: zcpack convert ", shown,
        " -o ", options.output.empty() ? std::string("OUT.gguf") : options.output, " --to gguf"));
  }
  ZCPACK_RETURN_IF_ERROR(ExpectContainer(options.path, "export"));
  ZCPACK_ASSIGN_OR_RETURN(const exporter::ExportReport report,
                          exporter::ExportToGguf(ExporterOptions(options)));
  return Print("export", options.path, report, options.json, options.quiet, options.verbose, out);
}

absl::Status CheckConvertToGgufOptions(const ConvertCommandOptions& options) {
  if (options.output.empty()) return absl::InvalidArgumentError("-o OUT is required");
  // --to gguf moves tensors, it never changes them.
  const struct {
    bool given;
    const char* flag;
  } unchanged[] = {
      {!options.quant.empty() && options.quant != "keep", "--quant"},
      {!options.output_quant.empty(), "--output-quant"},
      {!options.keep_f16.empty(), "--keep-f16"},
      {options.allow_nonfinite, "--allow-nonfinite"},
      {!options.tokenizer.empty(), "--tokenizer"},
  };
  for (const auto& u : unchanged) {
    if (u.given) {
      return absl::InvalidArgumentError(absl::StrCat(
          u.flag, " does not apply with --to gguf, which keeps every tensor and key as the"
                  " source has them"));
    }
  }
  if (absl::Status s = exporter::CheckGgufAlignment(options.alignment); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--alignment: ", s.message()));
  }
  // A source that can be read and is not GGUF is a usage error, found before
  // anything is written; one that cannot be read is the command's to report.
  absl::StatusOr<format::ScopedFd> fd = format::OpenReadOnly(options.source);
  if (!fd.ok()) return absl::OkStatus();
  uint8_t magic[4] = {0, 0, 0, 0};
  const ssize_t n = ::pread(fd->get(), magic, sizeof(magic), 0);
  if (n != static_cast<ssize_t>(sizeof(magic)) ||
      std::memcmp(magic, converter::kGgufMagic, sizeof(magic)) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        options.source, ": not a GGUF file; --to gguf lays out a GGUF file again (for a"
                        " checkpoint: convert it to a container, then zcpack export)"));
  }
  return absl::OkStatus();
}

absl::Status RunConvertToGguf(const ConvertCommandOptions& options, std::ostream& out) {
  exporter::AlignGgufOptions align;
  align.source = options.source;
  align.output = options.output;
  align.alignment = options.alignment;
  align.overwrite = options.force;
  ZCPACK_ASSIGN_OR_RETURN(const exporter::ExportReport report, exporter::AlignGguf(align));
  return Print("convert", options.source, report, options.json, options.quiet, options.verbose, out);
}

}  // namespace zcpack::cli

#include <algorithm>
#include <iomanip>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "tools/cli/commands.h"
#include "tools/cli/input_kind.h"
#include "tools/cli/json_output.h"
#include "zcpack/format/container_reader.h"
#include "zcpack/format/dtype.h"
#include "zcpack/format/row_groups.h"
#include "zcpack/format/structural_rules.h"
#include "zcpack/status_macros.h"

namespace zcpack::cli {
namespace {

using format::Container;
using format::TensorEntry;

std::string RoleName(format::TensorRole role) {
  std::string name = format::TensorRole_Name(role);
  if (name.rfind("ROLE_", 0) == 0) name = name.substr(5);
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}

std::string RopeName(format::RopeLayout layout) {
  switch (layout) {
    case format::ROPE_LAYOUT_HALF_SPLIT: return "half-split (Hugging Face)";
    case format::ROPE_LAYOUT_INTERLEAVED: return "interleaved (GGUF/Meta)";
    default: return "unspecified";
  }
}

std::string Hex64(uint64_t v) { return absl::StrCat(absl::Hex(v, absl::kZeroPad16)); }

struct Totals {
  uint64_t tensor_bytes = 0;
  // format::PaddingBytes(): what verify scans as padding.
  uint64_t padding_bytes = 0;
  uint64_t elements = 0;
  uint64_t quantized_elements = 0;
  uint64_t quantized_bytes = 0;
  uint64_t row_grouped = 0;  // tensors stored in row groups
};

Totals ComputeTotals(const Container& c) {
  Totals t;
  t.padding_bytes = format::PaddingBytes(c.header(), c.manifest());
  for (size_t i = 0; i < c.num_tensors(); ++i) {
    const TensorEntry& e = c.tensor(i);
    t.tensor_bytes += e.nbytes();
    if (e.layout() != format::LAYOUT_ROW_MAJOR) ++t.row_grouped;
    const uint64_t n = *format::ElementCount(std::span<const uint64_t>(e.shape().data(), e.shape_size()));
    t.elements += n;
    if (format::IsQuantized(e.dtype())) {
      t.quantized_elements += n;
      t.quantized_bytes += e.nbytes();
    }
  }
  return t;
}

nlohmann::json ModelJson(const format::ModelInfo& m) {
  return {{"architecture", m.architecture()},
          {"hidden_size", m.hidden_size()},
          {"num_layers", m.num_layers()},
          {"num_heads", m.num_heads()},
          {"num_kv_heads", m.num_kv_heads()},
          {"head_dim", m.head_dim()},
          {"intermediate_size", m.intermediate_size()},
          {"vocab_size", m.vocab_size()},
          {"rope_theta", m.rope_theta()},
          {"rms_norm_eps", m.rms_norm_eps()},
          {"tied_embeddings", m.tied_embeddings()},
          {"max_position_embeddings", m.max_position_embeddings()},
          {"rope_layout", format::RopeLayout_Name(m.rope_layout())},
          {"attention_bias", m.attention_bias()},
          {"bos_token_id", m.bos_token_id()},
          {"eos_token_id", m.eos_token_id()}};
}

void PrintJson(const Container& c, bool checksums_ok, bool checksums_run, std::ostream& out) {
  const auto& h = c.header();
  const Totals totals = ComputeTotals(c);
  nlohmann::json j;
  j["input"] = c.path();
  j["file_bytes"] = c.file_size();
  j["version"] = absl::StrCat(h.major_version, ".", h.minor_version);
  j["alignment"] = c.alignment();
  j["required_features"] = h.required_features;
  j["data_offset"] = h.data_offset;
  j["data_bytes"] = h.data_size;
  j["manifest"] = {{"offset", h.manifest_offset},
                   {"stored_bytes", h.manifest_size},
                   {"decoded_bytes", h.manifest_raw_size},
                   {"zstd", (h.required_features & format::kFeatureZstdManifest) != 0},
                   {"xxh3", Hex64(h.manifest_xxh3)}};
  j["model"] = ModelJson(c.manifest().model());
  nlohmann::json tensors = nlohmann::json::array();
  for (size_t i = 0; i < c.num_tensors(); ++i) {
    const TensorEntry& e = c.tensor(i);
    nlohmann::json t = {{"name", e.name()},
                        {"role", RoleName(e.role())},
                        {"layer", e.layer()},
                        {"dtype", std::string(format::DTypeName(e.dtype()))},
                        {"layout", std::string(format::LayoutName(e.layout()))},
                        {"source_dtype", std::string(format::DTypeName(e.source_dtype()))},
                        {"shape", std::vector<uint64_t>(e.shape().begin(), e.shape().end())},
                        {"offset", e.offset()},
                        {"bytes", e.nbytes()},
                        {"xxh3", Hex64(e.xxh3())}};
    if (e.has_quant_stats()) t["quant_stats"] = QuantStatsJson(e.quant_stats());
    tensors.push_back(std::move(t));
  }
  j["tensors"] = std::move(tensors);
  nlohmann::json layers = nlohmann::json::array();
  for (int l = 0; l < c.num_layers(); ++l) {
    if (auto r = c.LayerRange(l)) layers.push_back({{"layer", l}, {"offset", r->offset}, {"bytes", r->size}});
  }
  j["layers"] = std::move(layers);
  j["totals"] = {{"tensor_count", c.num_tensors()},
                 {"tensor_bytes", totals.tensor_bytes},
                 {"padding_bytes", totals.padding_bytes},
                 {"overhead_bytes", c.file_size() - totals.tensor_bytes},
                 {"overhead_ratio", c.file_size() == 0 ? 0.0
                                    : static_cast<double>(c.file_size() - totals.tensor_bytes) /
                                          static_cast<double>(c.file_size())},
                 {"parameters", totals.elements},
                 {"bits_per_weight", totals.elements == 0 ? 0.0
                                     : 8.0 * static_cast<double>(totals.tensor_bytes) /
                                           static_cast<double>(totals.elements)}};
  nlohmann::json tokenizers = nlohmann::json::array();
  for (const auto& t : c.manifest().tokenizers()) {
    tokenizers.push_back(
        {{"kind", t.kind()},
         {"file_name", t.file_name()},
         {"raw_bytes", t.raw_size()},
         {"stored_bytes", t.stored_size() != 0 ? t.stored_size() : t.zstd_data().size()}});
  }
  j["tokenizers"] = std::move(tokenizers);
  nlohmann::json sources = nlohmann::json::array();
  for (const auto& s : c.manifest().provenance().sources()) {
    sources.push_back({{"name", s.name()}, {"bytes", s.size()}});
  }
  nlohmann::json options = nlohmann::json::object();
  for (const auto& kv : c.manifest().provenance().options()) options[kv.key()] = kv.value();
  j["provenance"] = {{"converter_version", c.manifest().provenance().converter_version()},
                     {"sources", std::move(sources)},
                     {"options", std::move(options)}};
  if (checksums_run) j["checksums_ok"] = checksums_ok;
  out << ReportText("inspect", j) << "\n";
}

std::string Bytes(uint64_t n) {
  if (n >= (uint64_t{1} << 30)) return absl::StrFormat("%.2f GiB", n / double(uint64_t{1} << 30));
  if (n >= (uint64_t{1} << 20)) return absl::StrFormat("%.2f MiB", n / double(uint64_t{1} << 20));
  if (n >= 1024) return absl::StrFormat("%.1f KiB", n / 1024.0);
  return absl::StrCat(n, " B");
}

// The widest the text table gets. A name that does not fit goes on a line
// of its own, the row's figures on the next line in their columns (as df(1)
// wraps a long device name); the JSON report has every field in full.
constexpr size_t kTableColumns = 100;

// The per-tensor table: index, name, offset, bytes, dtype, shape, rmse and
// SNR. Layers are in the names and the layer ranges below the table;
// checksums, layers and layouts are in the JSON report.
void PrintTensorTable(const Container& c, std::ostream& out) {
  struct Row {
    std::string index, name, offset, nbytes, dtype, shape, rmse, snr;
  };
  std::vector<Row> rows;
  Row header{"#", "name", "offset", "bytes", "dtype", "shape", "rmse", "snr_db"};
  Row width = header;  // only the sizes are used
  auto widen = [](std::string& w, const std::string& v) {
    if (v.size() > w.size()) w.resize(v.size(), ' ');
  };
  for (size_t i = 0; i < c.num_tensors(); ++i) {
    const TensorEntry& e = c.tensor(i);
    Row r{absl::StrCat(i),
          e.name(),
          absl::StrCat(e.offset()),
          absl::StrCat(e.nbytes()),
          std::string(format::DTypeName(e.dtype())),
          absl::StrCat("[", absl::StrJoin(e.shape(), ", "), "]"),
          "-",
          "-"};
    if (e.has_quant_stats()) {
      r.rmse = absl::StrFormat("%.3g", e.quant_stats().rmse());
      r.snr = absl::StrFormat("%.1f", e.quant_stats().snr_db());
    }
    widen(width.index, r.index);
    widen(width.name, r.name);
    widen(width.offset, r.offset);
    widen(width.nbytes, r.nbytes);
    widen(width.dtype, r.dtype);
    widen(width.shape, r.shape);
    widen(width.rmse, r.rmse);
    widen(width.snr, r.snr);
    rows.push_back(std::move(r));
  }
  const auto figures = [&](const Row& r) {
    return absl::StrFormat("%*s %*s %-*s %-*s %*s %*s", width.offset.size(), r.offset,
                           width.nbytes.size(), r.nbytes, width.dtype.size(), r.dtype,
                           width.shape.size(), r.shape, width.rmse.size(), r.rmse,
                           width.snr.size(), r.snr);
  };
  const size_t figures_width = figures(header).size();
  const size_t lead = width.index.size() + 1;  // the index and a space
  const size_t room = kTableColumns > lead + figures_width + 2
                          ? kTableColumns - lead - figures_width - 2
                          : 0;
  const size_t name_width = std::min(width.name.size(), room);
  const auto line = [&](const Row& r) {
    std::string text = absl::StrFormat("%*s ", width.index.size(), r.index);
    if (r.name.size() > name_width) {
      // Too long for its column: alone on its line, the figures below it.
      absl::StrAppend(&text, r.name, "\n", std::string(lead + name_width + 2, ' '));
    } else {
      absl::StrAppend(&text, r.name, std::string(name_width + 2 - r.name.size(), ' '));
    }
    absl::StrAppend(&text, figures(r), "\n");
    return text;
  };
  out << line(header);
  for (const Row& r : rows) out << line(r);
}

void PrintText(const Container& c, bool checksums_run, std::ostream& out) {
  const auto& h = c.header();
  const auto& m = c.manifest().model();
  const Totals totals = ComputeTotals(c);
  out << "file        " << c.path() << " (" << Bytes(c.file_size()) << ", " << c.file_size()
      << " bytes)\n";
  out << "format      zcpack " << h.major_version << "." << h.minor_version << ", alignment "
      << c.alignment() << ", manifest " << h.manifest_size << " bytes"
      << ((h.required_features & format::kFeatureZstdManifest) ? absl::StrCat(" (zstd, ", h.manifest_raw_size, " decoded)") : "")
      << "\n";
  if (!m.architecture().empty()) {
    out << "model       " << m.architecture() << ": hidden " << m.hidden_size() << ", layers "
        << m.num_layers() << ", heads " << m.num_heads() << " (kv " << m.num_kv_heads()
        << ", head_dim " << m.head_dim() << "), ffn " << m.intermediate_size() << ", vocab "
        << m.vocab_size() << "\n";
    out << "            rope theta " << m.rope_theta() << ", " << RopeName(m.rope_layout())
        << "; rms eps " << m.rms_norm_eps() << "\n"
        << "            tied embeddings " << (m.tied_embeddings() ? "yes" : "no")
        << "; attention bias " << (m.attention_bias() ? "yes" : "no") << "; context "
        << m.max_position_embeddings() << "\n";
  }
  for (const auto& t : c.manifest().tokenizers()) {
    out << "tokenizer   " << t.kind() << " (" << t.file_name() << ", " << Bytes(t.raw_size())
        << ")\n";
  }
  if (!c.manifest().provenance().converter_version().empty()) {
    out << "converter   " << c.manifest().provenance().converter_version() << " from";
    for (const auto& s : c.manifest().provenance().sources()) out << " " << s.name();
    out << "\n";
  }
  out << "\n";
  PrintTensorTable(c, out);
  out << "\n";
  out << "layers      " << c.num_layers() << " contiguous ranges";
  if (c.num_layers() > 0) {
    const auto r = c.LayerRange(0);
    if (r) out << " (layer 0: offset " << r->offset << ", " << Bytes(r->size) << ")";
  }
  out << "\n";
  if (c.num_tensors() > 0) {
    out << "layout      " << totals.row_grouped << " tensors in 16-row groups, "
        << c.num_tensors() - totals.row_grouped << " row-major\n";
  }
  const uint64_t overhead = c.file_size() - totals.tensor_bytes;
  out << "totals      " << c.num_tensors() << " tensors, " << Bytes(totals.tensor_bytes)
      << " of tensor data, " << Bytes(totals.padding_bytes) << " of padding\n"
      << "            "
      << absl::StrFormat("%.2f%%", c.file_size() ? 100.0 * overhead / c.file_size() : 0.0)
      << " of the file is header, padding, tokenizer and manifest\n";
  if (totals.elements > 0) {
    out << "            " << totals.elements << " weights, "
        << absl::StrFormat("%.3f", 8.0 * totals.tensor_bytes / totals.elements)
        << " bits per weight overall\n";
  }
  if (checksums_run) out << "checksums   all " << c.num_tensors() << " tensors match\n";
}

}  // namespace

absl::Status RunInspect(const InspectOptions& options, std::ostream& out) {
  ZCPACK_RETURN_IF_ERROR(ExpectContainer(options.path, "inspect"));
  format::ReaderOptions reader_options;
  ZCPACK_ASSIGN_OR_RETURN(auto container, Container::Open(options.path, reader_options));
  if (options.checksums) ZCPACK_RETURN_IF_ERROR(container->VerifyChecksums());
  if (options.json) {
    PrintJson(*container, true, options.checksums, out);
  } else {
    PrintText(*container, options.checksums, out);
  }
  return absl::OkStatus();
}

}  // namespace zcpack::cli

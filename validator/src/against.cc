#include "against.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <optional>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "google/protobuf/util/message_differencer.h"
#include "parallel.h"
#include "zcpack/converter/quantize.h"
#include "zcpack/converter/source_model.h"
#include "zcpack/format/dtype.h"
#include "zcpack/format/model_layout.h"
#include "zcpack/format/q4_blocks.h"
#include "zcpack/format/row_groups.h"
#include "zcpack/format/status_context.h"
#include "zcpack/status_macros.h"

namespace zcpack::validator::internal {
namespace {

using converter::QuantErrorAccumulator;
using converter::SourceTensor;
using format::TensorEntry;

// About this many elements per work item.
constexpr uint64_t kItemElements = uint64_t{1} << 20;

// A tensor in both files, same shape, its container entry sound.
struct Pair {
  size_t tensor = 0;  // container index
  const SourceTensor* source = nullptr;
  bool unchanged = false;  // stored in the source's dtype
  bool zero_nonfinite = false;
  // Stored in LAYOUT_ROW_GROUPS_16: items are whole 16-row groups (the last
  // one also takes the row-major tail), put back into ggml's order before
  // they are compared.
  bool grouped = false;
  uint64_t row_length = 0;
  // Elements per error span (the converter's spans: a row, or
  // kQuantizePieceElements of a longer row).
  uint64_t span = 0;
  // Q/K of a source in the other RoPE layout: container unit u (a row; an
  // element of a 1-D bias) is source unit InterleavedRow(u) in heads of
  // `head_rows` (see there).
  bool permuted = false;
  uint64_t head_rows = 0;
  bool source_interleaved = false;  // else the container is
};

using format::HalfSplitRow;
using format::InterleavedRow;
using format::IsQueryOrKey;

// Elements [begin, end) of one pair. A range covers whole spans (only the
// last span of a row may be short), so measuring it span by span gives the
// spans the converter measured. For a grouped pair it covers whole rows.
struct Item {
  size_t pair = 0;
  uint64_t begin = 0;
  uint64_t end = 0;
};

struct ItemResult {
  QuantErrorAccumulator error;
  std::optional<uint64_t> first_difference;  // unchanged tensors: element index
};

std::string ShapeString(const std::vector<uint64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

uint64_t ByteOffset(format::DType dtype, uint64_t elements) {
  return elements / format::BlockElements(dtype) * format::BlockBytes(dtype);
}

bool SameStat(double a, double b) {
  if (a == b) return true;
  return std::fabs(a - b) <= 1e-9 * std::max(std::fabs(a), std::fabs(b));
}

void CompareModelInfo(const format::ModelInfo& container, format::ModelInfo source,
                      ReportBuilder& builder) {
  builder.Ran("source_model");
  // What an export to GGUF changes without changing the model: float32
  // keys, llama.cpp's architecture name for mistral, the RoPE layout (whose
  // Q/K rows MatchTensors() permutes).
  const auto as_float = [](double v) { return static_cast<float>(v); };
  if (as_float(source.rope_theta()) == as_float(container.rope_theta())) {
    source.set_rope_theta(container.rope_theta());
  }
  if (as_float(source.rms_norm_eps()) == as_float(container.rms_norm_eps())) {
    source.set_rms_norm_eps(container.rms_norm_eps());
  }
  if (container.architecture() == "mistral" && source.architecture() == "llama") {
    source.set_architecture(container.architecture());
  }
  if (source.rope_layout() != format::ROPE_LAYOUT_UNSPECIFIED &&
      container.rope_layout() != format::ROPE_LAYOUT_UNSPECIFIED) {
    source.set_rope_layout(container.rope_layout());
  }
  google::protobuf::util::MessageDifferencer differ;
  std::string differences;
  differ.ReportDifferencesToString(&differences);
  if (differ.Compare(container, source)) return;
  std::vector<std::string> lines;
  for (absl::string_view line : absl::StrSplit(differences, '\n', absl::SkipEmpty())) {
    lines.emplace_back(line);
  }
  builder.Add("source_model", "", std::nullopt,
              absl::StrCat("the source's hyperparameters differ (container -> source): ",
                           absl::StrJoin(lines, "; ")));
}

// Plans the pairs and their work items; reports source_tensors and
// source_shape.
void MatchTensors(const ContainerLayout& layout, const converter::SourceModel& source,
                  bool allow_nonfinite, ReportBuilder& builder, std::vector<Pair>* pairs,
                  std::vector<Item>* items) {
  builder.Ran("source_tensors");
  builder.Ran("source_shape");
  absl::flat_hash_map<absl::string_view, const SourceTensor*> by_name;
  for (const SourceTensor& t : source.tensors) by_name.emplace(t.name, &t);
  // An exported GGUF names the tensors of a Hugging Face checkpoint as
  // llama.cpp does: those are matched by role and layer.
  absl::flat_hash_map<std::pair<int, int32_t>, const SourceTensor*> by_place;
  for (const SourceTensor& t : source.tensors) {
    if (t.role != format::ROLE_OTHER) by_place.emplace(std::make_pair(static_cast<int>(t.role), t.layer), &t);
  }
  absl::flat_hash_set<const SourceTensor*> matched;
  absl::flat_hash_set<absl::string_view> container_names;
  for (const TensorEntry& t : layout.manifest.tensors()) container_names.insert(t.name());
  const format::ModelInfo& model = layout.manifest.model();
  const bool other_rope = model.rope_layout() != source.model.rope_layout() &&
                          model.rope_layout() != format::ROPE_LAYOUT_UNSPECIFIED &&
                          source.model.rope_layout() != format::ROPE_LAYOUT_UNSPECIFIED;
  absl::flat_hash_map<absl::string_view, size_t> in_container;
  const auto& tensors = layout.manifest.tensors();
  for (int i = 0; i < tensors.size(); ++i) {
    const TensorEntry& t = tensors[i];
    in_container.emplace(t.name(), static_cast<size_t>(i));
    const SourceTensor* found = nullptr;
    if (const auto it = by_name.find(t.name()); it != by_name.end()) {
      found = it->second;
    } else if (const auto placed = by_place.find(std::make_pair(static_cast<int>(t.role()), t.layer()));
               t.role() != format::ROLE_OTHER && placed != by_place.end() &&
               !container_names.contains(placed->second->name)) {
      found = placed->second;
    }
    if (found == nullptr || !matched.insert(found).second) {
      builder.Add("source_tensors", t.name(), t.offset(),
                  "the container holds this tensor but the source does not");
      continue;
    }
    const SourceTensor& s = *found;
    const std::vector<uint64_t> shape(t.shape().begin(), t.shape().end());
    if (shape != s.shape) {
      builder.Add("source_shape", t.name(), t.offset(),
                  absl::StrCat("shape ", ShapeString(shape), " in the container, ",
                               ShapeString(s.shape), " in the source"));
      continue;
    }
    if (!layout.placed[i] || !layout.sized[i]) continue;  // reported by the table checks
    Pair pair;
    pair.tensor = static_cast<size_t>(i);
    pair.source = &s;
    pair.unchanged = t.dtype() == s.dtype;
    pair.zero_nonfinite = allow_nonfinite && format::IsQuantized(t.dtype());
    pair.grouped = t.layout() == format::LAYOUT_ROW_GROUPS_16;
    pair.row_length = shape.back();
    pair.span = std::min<uint64_t>(pair.row_length, converter::kQuantizePieceElements);
    if (other_rope && IsQueryOrKey(t.role()) && model.head_dim() >= 2 &&
        shape.front() % model.head_dim() == 0) {
      pair.permuted = true;
      pair.head_rows = model.head_dim();
      pair.source_interleaved = source.model.rope_layout() == format::ROPE_LAYOUT_INTERLEAVED;
    }
    const uint64_t elements =
        s.data.size() / format::BlockBytes(s.dtype) * format::BlockElements(s.dtype);
    const size_t p = pairs->size();
    if (pair.grouped) {
      // Whole groups, so that each item's stored bytes are one range and can
      // be put back in order on their own.
      const uint64_t rows = elements / pair.row_length;
      const uint64_t groups_per_item =
          std::max<uint64_t>(1, kItemElements / (format::kRowGroupRows * pair.row_length));
      const uint64_t step = groups_per_item * format::kRowGroupRows;
      for (uint64_t r = 0; r < rows; r += step) {
        // The last item may end with the row-major tail, which
        // FromRowGroups() copies as it is.
        items->push_back({p, r * pair.row_length, std::min(rows, r + step) * pair.row_length});
      }
    } else if (pair.row_length <= converter::kQuantizePieceElements) {
      const uint64_t rows_per_item = std::max<uint64_t>(1, kItemElements / pair.row_length);
      const uint64_t step = rows_per_item * pair.row_length;
      for (uint64_t e = 0; e < elements; e += step) items->push_back({p, e, std::min(elements, e + step)});
    } else {
      // Long rows: pieces inside a row, starting at span boundaries.
      const uint64_t step =
          std::max<uint64_t>(1, kItemElements / converter::kQuantizePieceElements) *
          converter::kQuantizePieceElements;
      for (uint64_t row = 0; row < elements; row += pair.row_length) {
        for (uint64_t e = row; e < row + pair.row_length; e += step) {
          items->push_back({p, e, std::min(row + pair.row_length, e + step)});
        }
      }
    }
    pairs->push_back(pair);
  }
  for (const SourceTensor& s : source.tensors) {
    if (!in_container.contains(s.name) && !matched.contains(&s)) {
      builder.Add("source_tensors", s.name, std::nullopt,
                  absl::StrCat("the source holds this tensor (", s.file,
                               ") but the container does not"));
    }
  }
}

// Drops this process's page-table entries for the whole pages inside
// [data, data + size) of a read-only file mapping, so that the resident set
// stays bounded while the source (mapped by OpenSourceModel()) is streamed
// through. The page cache keeps the pages; a later read faults them back in.
// A hint: failures are ignored.
void ReleaseMappedPages(const uint8_t* data, size_t size) {
  static const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + page - 1) & ~(page - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(data) + size) & ~(page - 1);
  if (end > begin) (void)::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

// Measures one item into `result`.
absl::Status MeasureItem(const ByteSource& container, const ContainerLayout& layout,
                         const Pair& pair, const Item& item, ScratchBuffer& stored_buffer,
                         ScratchBuffer& row_major_buffer, ScratchBuffer& permuted_buffer,
                         std::vector<float>& source_values, std::vector<float>& decoded,
                         ItemResult& result) {
  const TensorEntry& t = layout.manifest.tensors(static_cast<int>(pair.tensor));
  const SourceTensor& s = *pair.source;
  const size_t n = static_cast<size_t>(item.end - item.begin);
  const uint64_t stored_begin = ByteOffset(t.dtype(), item.begin);
  std::span<uint8_t> stored = stored_buffer.Get(
      static_cast<size_t>(ByteOffset(t.dtype(), item.end) - stored_begin));
  ZCPACK_RETURN_IF_ERROR(container.Read(t.offset() + stored_begin, stored));
  if (pair.grouped) {
    // The item starts at a group and holds whole rows: ggml's order again.
    const uint64_t row_bytes = ByteOffset(t.dtype(), pair.row_length);
    const std::span<uint8_t> row_major = row_major_buffer.Get(stored.size());
    format::FromRowGroups(t.dtype(), stored.size() / row_bytes, row_bytes, stored.data(),
                          row_major.data());
    stored = row_major;
  }
  // Items start and end on block boundaries of both dtypes (whole rows, or
  // pieces of kQuantizePieceElements), so byte offsets are exact.
  const uint8_t* const mapped = s.data.data() + ByteOffset(s.dtype, item.begin);
  const uint8_t* source_bytes = mapped;
  const size_t source_size = static_cast<size_t>(ByteOffset(s.dtype, n));
  if (pair.permuted) {
    // The source's units (rows; elements of a 1-D bias) in the container's
    // order. A unit never straddles a block: rows are whole blocks, and a
    // bias is a float type.
    const uint64_t unit = t.shape_size() == 1 ? 1 : pair.row_length;
    const std::span<uint8_t> gathered = permuted_buffer.Get(source_size);
    for (uint64_t e = item.begin; e < item.end;) {
      const uint64_t u = e / unit, end = std::min(item.end, (u + 1) * unit);
      const uint64_t from = (pair.source_interleaved ? InterleavedRow(u, pair.head_rows)
                                                      : HalfSplitRow(u, pair.head_rows)) *
                                unit + (e - u * unit);
      std::memcpy(gathered.data() + ByteOffset(s.dtype, e - item.begin),
                  s.data.data() + ByteOffset(s.dtype, from),
                  static_cast<size_t>(ByteOffset(s.dtype, end - e)));
      e = end;
    }
    source_bytes = gathered.data();
  }
  if (pair.unchanged) {
    // Floats and kept quantized blocks alike: the bytes must be the source's.
    if (std::memcmp(stored.data(), source_bytes, stored.size()) != 0) {
      size_t i = 0;
      while (stored[i] == source_bytes[i]) ++i;
      result.first_difference =
          item.begin + i / format::BlockBytes(s.dtype) * format::BlockElements(s.dtype);
    }
    ReleaseMappedPages(mapped, source_size);
    return absl::OkStatus();
  }
  source_values.resize(n);
  decoded.resize(n);
  ZCPACK_RETURN_IF_ERROR(format::ConvertToFloat(s.dtype, source_bytes, n, source_values.data()));
  ReleaseMappedPages(mapped, source_size);
  if (pair.zero_nonfinite) {
    // As the converter does with --allow-nonfinite.
    for (float& v : source_values) {
      if (!std::isfinite(v)) v = 0.0f;
    }
  }
  ZCPACK_RETURN_IF_ERROR(format::ConvertToFloat(t.dtype(), stored.data(), n, decoded.data()));
  // A grouped item holds whole rows, which AddRows() cuts into the spans.
  result.error.AddRows(source_values.data(), decoded.data(), n,
                       static_cast<size_t>(pair.grouped ? pair.row_length : pair.span));
  return absl::OkStatus();
}

}  // namespace

absl::Status CompareWithSource(const ByteSource& container, const ContainerLayout& layout,
                               const VerifyOptions& options, int threads, ReportBuilder& builder,
                               VerifyReport* report) {
  auto opened = converter::OpenSourceModel(options.against);
  if (!opened.ok()) {
    return format::WithFile(
        format::WithMessage(opened.status(), absl::StrCat("--against ", options.against, ": ",
                                                          opened.status().message())),
        options.against);
  }
  const converter::SourceModel& source = **opened;
  // The source stays mapped while it is compared. Its mappings are guarded
  // (format::MappingGuard): a source truncated meanwhile reads as zeros from
  // there on instead of killing the process with SIGBUS. Zeros would then show
  // as wrong weights, so the mappings are checked before anything read from
  // them is trusted: after opening, after every item, and at the end, and a
  // fault is the error reported (Aborted, "<file>: truncated or unreadable
  // while mapped").
  ZCPACK_RETURN_IF_ERROR(source.CheckMappings());
  CompareModelInfo(layout.manifest.model(), source.model, builder);

  bool allow_nonfinite = false;
  for (const format::KeyValue& kv : layout.manifest.provenance().options()) {
    if (kv.key() == "allow_nonfinite") allow_nonfinite = kv.value() == "true";
  }
  std::vector<Pair> pairs;
  std::vector<Item> items;
  MatchTensors(layout, source, allow_nonfinite, builder, &pairs, &items);

  std::vector<uint64_t> item_bytes(items.size());
  uint64_t pass_bytes = 0;
  for (size_t k = 0; k < items.size(); ++k) {
    const format::DType dtype =
        layout.manifest.tensors(static_cast<int>(pairs[items[k].pair].tensor)).dtype();
    item_bytes[k] = ByteOffset(dtype, items[k].end) - ByteOffset(dtype, items[k].begin);
    pass_bytes += item_bytes[k];
  }
  ByteProgress progress(options.progress, "against", pass_bytes);
  std::vector<ItemResult> results(items.size());
  const auto make_worker = [&]() -> ItemFn {
    struct Scratch {
      ScratchBuffer stored, row_major, permuted;
      std::vector<float> source_values, decoded;
    };
    auto scratch = std::make_shared<Scratch>();
    return [&, scratch](size_t k) -> absl::Status {
      const absl::Status measured =
          MeasureItem(container, layout, pairs[items[k].pair], items[k], scratch->stored,
                      scratch->row_major, scratch->permuted, scratch->source_values, scratch->decoded, results[k]);
      ZCPACK_RETURN_IF_ERROR(source.CheckMappings());
      progress.Add(item_bytes[k]);
      return measured;
    };
  };
  const absl::Status compared = ParallelFor(items.size(), threads, make_worker);
  progress.Finish();
  // Whatever else went wrong, a source that faulted is the cause to report.
  ZCPACK_RETURN_IF_ERROR(source.CheckMappings());
  ZCPACK_RETURN_IF_ERROR(compared);

  // Per pair, in file order (items are grouped by pair, in pair order).
  builder.Ran("source_data");
  builder.Ran("quant_error");
  builder.Ran("quant_stats");
  size_t k = 0;
  size_t unchanged = 0, converted = 0;
  for (size_t p = 0; p < pairs.size(); ++p) {
    const Pair& pair = pairs[p];
    const TensorEntry& t = layout.manifest.tensors(static_cast<int>(pair.tensor));
    QuantErrorAccumulator error;
    std::optional<uint64_t> first_difference;
    for (; k < items.size() && items[k].pair == p; ++k) {
      error.Merge(results[k].error);
      if (results[k].first_difference && !first_difference) {
        first_difference = results[k].first_difference;
      }
    }
    TensorComparison c;
    c.name = t.name();
    c.dtype = t.dtype();
    c.source_dtype = pair.source->dtype;
    c.unchanged = pair.unchanged;
    if (pair.unchanged) {
      ++unchanged;
      if (first_difference) {
        builder.Add("source_data", t.name(), t.offset(),
                    absl::StrCat("stored unconverted as ", format::DTypeName(t.dtype()),
                                 ", but element ", *first_difference, " (row ",
                                 *first_difference / pair.row_length, ", column ",
                                 *first_difference % pair.row_length,
                                 ") differs from the source"));
      }
      c.snr_db = first_difference ? 0 : QuantErrorAccumulator::kInfiniteSnrDb;
      report->comparisons.push_back(std::move(c));
      continue;
    }
    ++converted;
    c.rmse = error.rmse();
    c.max_abs_error = error.max_abs_error();
    c.snr_db = error.snr_db();
    // Written so that NaN fails.
    const bool rmse_ok = c.rmse <= options.max_rmse;
    const bool snr_ok = c.snr_db >= options.min_snr_db;
    if (!rmse_ok || !snr_ok) {
      std::vector<std::string> why;
      if (!rmse_ok) why.push_back(absl::StrFormat("RMSE %.6g above --max-rmse %g", c.rmse, options.max_rmse));
      if (!snr_ok) why.push_back(absl::StrFormat("SNR %.2f dB below --min-snr %g", c.snr_db, options.min_snr_db));
      builder.Add("quant_error", t.name(), t.offset(),
                  absl::StrCat(format::DTypeName(pair.source->dtype), " -> ",
                               format::DTypeName(t.dtype()), ": ", absl::StrJoin(why, ", "),
                               " (is this the source it was converted from?)"));
    } else if (t.has_quant_stats()) {
      const format::QuantStats& recorded = t.quant_stats();
      if (!SameStat(recorded.rmse(), c.rmse) || !SameStat(recorded.snr_db(), c.snr_db) ||
          !SameStat(recorded.max_abs_error(), c.max_abs_error)) {
        builder.Add("quant_stats", t.name(), t.offset(),
                    absl::StrFormat("the manifest records RMSE %.9g, SNR %.6f dB, max error %.9g; "
                                    "this source gives RMSE %.9g, SNR %.6f dB, max error %.9g "
                                    "(converted from other weights?)",
                                    recorded.rmse(), recorded.snr_db(), recorded.max_abs_error(),
                                    c.rmse, c.snr_db, c.max_abs_error));
      }
    }
    report->comparisons.push_back(std::move(c));
  }
  builder.SetDetail("source_data", absl::StrCat(unchanged, " tensors compared byte for byte"));
  builder.SetDetail("quant_error",
                    absl::StrFormat("%d converted tensors; RMSE <= %g, SNR >= %g dB", converted,
                                    options.max_rmse, options.min_snr_db));
  return absl::OkStatus();
}

}  // namespace zcpack::validator::internal

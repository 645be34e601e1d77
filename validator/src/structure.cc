#include "structure.h"

#include <algorithm>
#include <iterator>
#include <map>
#include <string>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "xxhash.h"
#include "zcpack/format/coding.h"
#include "zcpack/format/dtype.h"
#include "zcpack/format/format_constants.h"
#include "zcpack/format/model_layout.h"
#include "zcpack/format/row_groups.h"
#include "zcpack/status_macros.h"
#include "zstd.h"

namespace zcpack::validator::internal {
namespace {

using format::ContainerHeader;
using format::kHeaderSize;
using format::TensorEntry;

std::string Hex64(uint64_t v) { return absl::StrCat("0x", absl::Hex(v, absl::kZeroPad16)); }

std::string HexBytes(std::span<const uint8_t> bytes) {
  return absl::StrJoin(bytes, " ", [](std::string* out, uint8_t b) {
    absl::StrAppend(out, absl::Hex(b, absl::kZeroPad2));
  });
}

std::string ShapeString(std::span<const uint64_t> shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

uint64_t AlignUp(uint64_t v, uint64_t alignment) { return (v + alignment - 1) & ~(alignment - 1); }

// Every check after `failed` in AllChecks() is not reached; says why.
void StopAfter(ReportBuilder& report, absl::string_view failed) {
  bool after = false;
  const std::string reason = absl::StrCat("not reached: '", failed, "' failed");
  for (const CheckInfo& c : AllChecks()) {
    if (after) report.Skip(c.name, reason);
    if (c.name == failed) after = true;
  }
}

// A file too short for a header: truncated if what is there starts like the
// magic, otherwise not a container (the reader's rule).
void CheckShortFile(std::span<const uint8_t> present, ReportBuilder& report) {
  const size_t compared = std::min(present.size(), format::kMagicSize);
  if (std::equal(present.begin(), present.begin() + compared, std::begin(format::kMagic))) {
    report.Ran("magic");
    report.Add("file_size", "", 0,
               absl::StrCat("truncated: the file is ", present.size(),
                            " bytes, the header alone needs ", kHeaderSize));
    StopAfter(report, "file_size");
  } else {
    report.Add("magic", "", 0,
               absl::StrCat("not a zcpack container: the file starts with ",
                            HexBytes(present.first(compared)), ", expected ",
                            HexBytes(format::kMagic)));
    StopAfter(report, "magic");
  }
}

// The header checks, in the reader's order. Returns true when the header's
// offsets and sizes can be used; on a failure that makes them unusable,
// reports it and returns false. header_size and reserved are reported but do
// not stop the checks: the fields around them stay meaningful.
bool CheckHeader(std::span<const uint8_t, kHeaderSize> raw, uint64_t file_size,
                 const format::ReaderLimits& limits, ReportBuilder& report, ContainerHeader* out) {
  const ContainerHeader h = format::DecodeHeader(raw);
  *out = h;
  auto fail = [&report](absl::string_view check, uint64_t offset, std::string detail) {
    report.Add(check, "", offset, std::move(detail));
    StopAfter(report, check);
    return false;
  };

  report.Ran("magic");
  if (!std::equal(h.magic.begin(), h.magic.end(), std::begin(format::kMagic))) {
    std::string hint;
    // "\r\n" turned into "\n" shifts everything after byte 4 by one.
    if (std::equal(h.magic.begin(), h.magic.begin() + 4, std::begin(format::kMagic)) &&
        h.magic[4] == '\n' && h.magic[5] == 0x1A) {
      hint = " (\\r\\n became \\n: was the file copied in text mode?)";
    }
    return fail("magic", format::kOffMagic,
                absl::StrCat("not a zcpack container: the file starts with ", HexBytes(h.magic),
                             ", expected ", HexBytes(format::kMagic), hint));
  }
  report.Ran("version");
  if (h.major_version != format::kMajorVersion) {
    return fail("version", format::kOffMajorVersion,
                absl::StrCat("container format version ", h.major_version, ".", h.minor_version,
                             "; this verifier supports ", format::kMajorVersion, ".x"));
  }
  report.Ran("header_checksum");
  const uint64_t checksum = format::HeaderChecksum(raw);
  if (checksum != h.header_xxh3) {
    return fail("header_checksum", format::kOffHeaderXxh3,
                absl::StrCat("header checksum mismatch: stored ", Hex64(h.header_xxh3),
                             ", computed ", Hex64(checksum), " over bytes [0, ",
                             format::kOffHeaderXxh3, ")"));
  }
  report.Ran("header_size");
  if (h.header_size != kHeaderSize) {
    report.Add("header_size", "", format::kOffHeaderSize,
               absl::StrCat("header size field is ", h.header_size, ", expected ", kHeaderSize));
  }
  report.Ran("reserved");
  if (h.reserved0 != 0) {
    report.Add("reserved", "", format::kOffHeaderReserved0,
               absl::StrCat("reserved header bytes are not zero: reserved0 is ", h.reserved0));
  }
  for (size_t i = 0; i < h.reserved.size(); ++i) {
    if (h.reserved[i] != 0) {
      report.Add("reserved", "", format::kOffReserved + i,
                 absl::StrCat("reserved header bytes are not zero: byte ", format::kOffReserved + i,
                              " is 0x", absl::Hex(h.reserved[i], absl::kZeroPad2)));
      break;
    }
  }
  report.Ran("required_features");
  if ((h.required_features & ~format::kKnownRequiredFeatures) != 0) {
    return fail("required_features", format::kOffRequiredFeatures,
                absl::StrCat("container requires unknown features 0x",
                             absl::Hex(h.required_features & ~format::kKnownRequiredFeatures),
                             "; a newer reader is needed"));
  }
  report.Ran("header_alignment");
  if (h.alignment_log2 < format::kMinAlignmentLog2 || h.alignment_log2 > format::kMaxAlignmentLog2) {
    return fail("header_alignment", format::kOffAlignmentLog2,
                absl::StrCat("alignment 2^", h.alignment_log2, " outside [2^",
                             format::kMinAlignmentLog2, ", 2^", format::kMaxAlignmentLog2, "]"));
  }
  report.Ran("file_size");
  if (h.file_size != file_size) {
    return fail("file_size", format::kOffFileSize,
                absl::StrCat("the file is ", file_size, " bytes but its header records ",
                             h.file_size,
                             file_size < h.file_size ? " (truncated)" : " (trailing bytes)"));
  }
  report.Ran("data_region");
  const uint64_t alignment = h.alignment();
  if (h.data_offset < kHeaderSize || h.data_offset % alignment != 0 ||
      h.data_size % alignment != 0 ||
      !format::ByteRangeInBounds(h.data_offset, h.data_size, file_size)) {
    return fail("data_region", format::kOffDataOffset,
                absl::StrCat("data region [", h.data_offset, ", +", h.data_size,
                             ") is misaligned (alignment ", alignment, ") or outside the ",
                             file_size, "-byte file"));
  }
  report.Ran("manifest_bounds");
  if (h.manifest_offset < h.data_offset + h.data_size ||
      !format::ByteRangeInBounds(h.manifest_offset, h.manifest_size, file_size) ||
      h.manifest_offset + h.manifest_size != file_size) {
    return fail("manifest_bounds", format::kOffManifestOffset,
                absl::StrCat("manifest [", h.manifest_offset, ", +", h.manifest_size,
                             ") does not end the ", file_size,
                             "-byte file after the data region, which ends at ",
                             h.data_offset + h.data_size));
  }
  report.Ran("manifest_limit");
  if (h.manifest_size > limits.max_manifest_bytes) {
    return fail("manifest_limit", format::kOffManifestSize,
                absl::StrCat("manifest of ", h.manifest_size, " bytes, over the limit of ",
                             limits.max_manifest_bytes));
  }
  if (h.manifest_raw_size > limits.max_manifest_raw_bytes) {
    return fail("manifest_limit", format::kOffManifestRawSize,
                absl::StrCat("manifest decodes to ", h.manifest_raw_size,
                             " bytes, over the limit of ", limits.max_manifest_raw_bytes));
  }
  report.Ran("manifest_size");
  if ((h.required_features & format::kFeatureZstdManifest) == 0 &&
      h.manifest_raw_size != h.manifest_size) {
    return fail("manifest_size", format::kOffManifestRawSize,
                absl::StrCat("uncompressed manifest of ", h.manifest_size,
                             " bytes declares a decoded size of ", h.manifest_raw_size));
  }
  return true;
}

// The manifest checks. Returns true with `manifest` filled when it parses.
absl::StatusOr<bool> CheckManifest(const ByteSource& source, const ContainerHeader& h,
                                   ReportBuilder& report, format::Manifest* manifest) {
  auto fail = [&report, &h](absl::string_view check, std::string detail) {
    report.Add(check, "", h.manifest_offset, std::move(detail));
    StopAfter(report, check);
    return false;
  };
  // Bounded by limits.max_manifest_bytes, checked with the header.
  std::string stored(static_cast<size_t>(h.manifest_size), '\0');
  ZCPACK_RETURN_IF_ERROR(source.Read(
      h.manifest_offset, std::span<uint8_t>(reinterpret_cast<uint8_t*>(stored.data()), stored.size())));
  report.Ran("manifest_checksum");
  const uint64_t checksum = XXH3_64bits(stored.data(), stored.size());
  if (checksum != h.manifest_xxh3) {
    return fail("manifest_checksum", absl::StrCat("manifest checksum mismatch: stored ",
                                                  Hex64(h.manifest_xxh3), ", computed ",
                                                  Hex64(checksum)));
  }
  std::string raw;
  if ((h.required_features & format::kFeatureZstdManifest) == 0) {
    report.Skip("zstd_size", "not applicable: the manifest is not compressed");
    report.Skip("zstd_frame", "not applicable: the manifest is not compressed");
    raw = std::move(stored);
  } else {
    report.Ran("zstd_size");
    const unsigned long long frame_size = ZSTD_getFrameContentSize(stored.data(), stored.size());
    if (frame_size == ZSTD_CONTENTSIZE_ERROR || frame_size == ZSTD_CONTENTSIZE_UNKNOWN ||
        frame_size != h.manifest_raw_size) {
      return fail("zstd_size",
                  absl::StrCat("zstd manifest frame declares ",
                               frame_size == ZSTD_CONTENTSIZE_ERROR     ? std::string("an invalid frame")
                               : frame_size == ZSTD_CONTENTSIZE_UNKNOWN ? std::string("no size")
                                   : absl::StrCat(frame_size, " bytes"),
                               " but the header declares ", h.manifest_raw_size));
    }
    report.Ran("zstd_frame");
    const size_t frame_bytes = ZSTD_findFrameCompressedSize(stored.data(), stored.size());
    if (ZSTD_isError(frame_bytes) || frame_bytes != stored.size()) {
      return fail("zstd_frame",
                  absl::StrCat("zstd manifest of ", stored.size(), " bytes is not exactly one frame",
                               ZSTD_isError(frame_bytes)
                                   ? absl::StrCat(" (", ZSTD_getErrorName(frame_bytes), ")")
                                   : absl::StrCat(" (first frame: ", frame_bytes, " bytes)")));
    }
    // Bounded by limits.max_manifest_raw_bytes, checked with the header.
    raw.assign(static_cast<size_t>(h.manifest_raw_size), '\0');
    const size_t n = ZSTD_decompress(raw.data(), raw.size(), stored.data(), stored.size());
    if (ZSTD_isError(n) || n != raw.size()) {
      return fail("zstd_size",
                  absl::StrCat("zstd manifest does not decode to its declared ", raw.size(),
                               " bytes",
                               ZSTD_isError(n) ? absl::StrCat(" (", ZSTD_getErrorName(n), ")")
                                               : absl::StrCat(" (got ", n, ")")));
    }
  }
  report.Ran("manifest_parse");
  if (!manifest->ParseFromString(raw)) {
    return fail("manifest_parse", absl::StrCat("the ", raw.size(),
                                               " decoded manifest bytes do not parse as a "
                                               "protobuf Manifest"));
  }
  return true;
}

constexpr absl::string_view kTableChecks[] = {
    "tensor_limit",  "empty_name",     "name_limit",  "duplicate_name", "dtype",
    "rank_limit",    "shape_rank",     "shape_zero",  "block_multiple", "shape_overflow",
    "nbytes",        "layout",         "alignment",   "tensor_bounds",  "order",  "overlap",
    "layer_range",   "layer_order",    "layer_contiguity", "layer_outside"};

// The per-tensor checks of ValidateTensorTable() (format/src/tensor_table.cc),
// in its order, but over every tensor: a tensor that breaks a rule is
// reported and then left out of the running state (previous offset, layer
// runs), so that one bad entry does not make its neighbours look bad too.
void CheckTensorTable(const ContainerHeader& h, const format::ReaderLimits& limits,
                      ReportBuilder& report, ContainerLayout* layout) {
  const auto& tensors = layout->manifest.tensors();
  const uint64_t count = static_cast<uint64_t>(tensors.size());
  report.Ran("tensor_limit");
  if (count > limits.max_tensors) {
    report.Add("tensor_limit", "", h.manifest_offset,
               absl::StrCat("the manifest lists ", count, " tensors, over the limit of ",
                            limits.max_tensors));
    StopAfter(report, "tensor_limit");
    return;
  }
  for (absl::string_view check : kTableChecks) report.Ran(check);
  layout->table_checked = true;
  layout->placed.assign(count, false);
  layout->sized.assign(count, false);
  layout->layer_ranges.clear();
  const uint64_t alignment = h.alignment();
  absl::flat_hash_set<absl::string_view> names;
  names.reserve(count);
  bool have_previous = false;
  uint64_t previous_offset = 0;
  uint64_t previous_end = h.data_offset;  // aligned end of the previous placed tensor
  int64_t current_layer = -1;             // highest layer of a run seen so far
  int64_t previous_tensor_layer = -1;
  bool left_layers = false;               // a layer -1 tensor came after a layered one
  for (int i = 0; i < tensors.size(); ++i) {
    const TensorEntry& t = tensors[i];
    const std::string& name = t.name();
    // Names over the limit are shown cut short: the limit bounds messages too.
    const std::string label = name.size() > limits.max_name_bytes
                                  ? absl::StrCat(name.substr(0, 64), "...")
                                  : name;
    auto add = [&](absl::string_view check, std::string what) {
      report.Add(check, label, t.offset(), absl::StrCat("tensor #", i, ": ", what));
    };

    if (name.empty()) {
      add("empty_name", "empty name");
    } else if (name.size() > limits.max_name_bytes) {
      add("name_limit", absl::StrCat("name of ", name.size(), " bytes, over the limit of ",
                                     limits.max_name_bytes));
    } else if (!names.insert(name).second) {
      add("duplicate_name", "duplicate tensor name");
    }

    const std::span<const uint64_t> shape(t.shape().data(), t.shape_size());
    if (!format::IsKnownDType(t.dtype())) {
      add("dtype", absl::StrCat("unknown dtype ", static_cast<int>(t.dtype())));
    } else if (shape.size() > limits.max_rank) {
      add("rank_limit", absl::StrCat("rank ", shape.size(), " over the limit of ", limits.max_rank));
    } else if (auto expected = format::TensorByteSize(t.dtype(), shape); !expected.ok()) {
      // TensorByteSize() checks these conditions in this order.
      const absl::string_view check =
          shape.empty()                                                 ? "shape_rank"
          : std::find(shape.begin(), shape.end(), 0u) != shape.end()    ? "shape_zero"
          : shape.back() % format::BlockElements(t.dtype()) != 0        ? "block_multiple"
                                                                        : "shape_overflow";
      add(check, std::string(expected.status().message()));
    } else {
      if (t.nbytes() != *expected) {
        add("nbytes", absl::StrCat("nbytes is ", t.nbytes(), " but ", format::DTypeName(t.dtype()),
                                   " ", ShapeString(shape), " needs ", *expected));
      }
      // The dtype and shape are sound, as TensorLayoutProblem() expects.
      const std::string problem = format::TensorLayoutProblem(t, h.required_features);
      if (!problem.empty()) add("layout", problem);
      layout->sized[i] = t.nbytes() == *expected && problem.empty();
    }

    bool placed = false;
    if (t.offset() % alignment != 0) {
      add("alignment", absl::StrCat("offset ", t.offset(), " is not a multiple of the alignment ",
                                    alignment));
    } else if (t.offset() < h.data_offset ||
               !format::ByteRangeInBounds(t.offset() - h.data_offset, t.nbytes(), h.data_size)) {
      add("tensor_bounds", absl::StrCat("bytes [", t.offset(), ", +", t.nbytes(),
                                        ") lie outside the data region [", h.data_offset, ", ",
                                        h.data_offset + h.data_size, ")"));
    } else if (have_previous && t.offset() <= previous_offset) {
      add("order", absl::StrCat("offset ", t.offset(), " is not after the previous tensor's ",
                                previous_offset, " (tensors must be in file order)"));
    } else if (t.offset() < previous_end) {
      add("overlap", absl::StrCat("offset ", t.offset(),
                                  " overlaps the previous tensor, which extends to ",
                                  previous_end));
    } else {
      placed = true;
      layout->placed[i] = true;
      have_previous = true;
      previous_offset = t.offset();
      // Inside an aligned region, so aligning up cannot overflow.
      previous_end = AlignUp(t.offset() + t.nbytes(), alignment);
    }

    const int64_t layer = t.layer();
    if (layer < -1 || layer >= static_cast<int64_t>(count)) {
      add("layer_range", absl::StrCat("layer index ", layer, " out of range [-1, ", count, ")"));
      continue;
    }
    if (layer >= 0) {
      bool in_run = false;
      if (layer < current_layer) {
        add("layer_order", absl::StrCat("layer ", layer, " comes after layer ", current_layer,
                                        " (layers must be in order)"));
      } else if (layer == current_layer && previous_tensor_layer != layer) {
        add("layer_contiguity", absl::StrCat("layer ", layer, " is not one contiguous range"));
      } else if (left_layers) {
        add("layer_outside", absl::StrCat("layer ", layer,
                                          " follows a tensor outside the layers (those must "
                                          "come before the first layer or after the last)"));
      } else {
        in_run = true;
      }
      if (in_run && placed) {
        if (static_cast<uint64_t>(layer) >= layout->layer_ranges.size()) {
          layout->layer_ranges.resize(static_cast<size_t>(layer) + 1);
        }
        format::ByteRange& range = layout->layer_ranges[static_cast<size_t>(layer)];
        if (range.size == 0) range.offset = t.offset();
        range.size = previous_end - range.offset;
      }
      current_layer = std::max(current_layer, layer);
    } else if (current_layer >= 0) {
      left_layers = true;
    }
    previous_tensor_layer = layer;
  }
  uint64_t table_problems = 0;
  for (absl::string_view check : kTableChecks) table_problems += report.CheckProblems(check);
  layout->table_ok = table_problems == 0;
}

std::string RoleAndLayer(format::TensorRole role, int32_t layer) {
  if (layer < 0) return std::string(format::TensorRoleName(role));
  return absl::StrCat(format::TensorRoleName(role), ", layer ", layer);
}

}  // namespace

absl::StatusOr<ContainerLayout> CheckStructure(const ByteSource& source,
                                               const format::ReaderLimits& limits,
                                               ReportBuilder& report) {
  ContainerLayout layout;
  const uint64_t file_size = source.size();
  std::array<uint8_t, kHeaderSize> raw{};
  if (file_size < kHeaderSize) {
    const std::span<uint8_t> present(raw.data(), static_cast<size_t>(file_size));
    ZCPACK_RETURN_IF_ERROR(source.Read(0, present));
    CheckShortFile(present, report);
    return layout;
  }
  ZCPACK_RETURN_IF_ERROR(source.Read(0, raw));
  if (!CheckHeader(raw, file_size, limits, report, &layout.header)) return layout;
  layout.header_ok = true;
  ZCPACK_ASSIGN_OR_RETURN(layout.manifest_ok,
                          CheckManifest(source, layout.header, report, &layout.manifest));
  if (!layout.manifest_ok) return layout;
  CheckTensorTable(layout.header, limits, report, &layout);
  return layout;
}

void CheckModel(const ContainerLayout& layout, ReportBuilder& report) {
  if (!layout.table_checked) return;  // the checks keep their "not reached" reason
  const format::ModelInfo& model = layout.manifest.model();
  report.Ran("model_info");
  if (absl::Status valid = format::ValidateModelInfo(model); !valid.ok()) {
    report.Add("model_info", "", std::nullopt, std::string(valid.message()));
    for (absl::string_view check : {"model_tensors", "access_order", "layer_ranges"}) {
      report.Skip(check, "not run: the model's hyperparameters are invalid");
    }
    return;
  }
  report.Ran("model_tensors");
  report.Ran("access_order");
  report.Ran("layer_ranges");
  // Valid hyperparameters, so ExpectedTensors() succeeds.
  const std::vector<format::ExpectedTensor> expected = *format::ExpectedTensors(model);
  // (layer, role) -> index into `expected`, which is in forward-pass order.
  std::map<std::pair<int32_t, int>, size_t> wanted;
  for (size_t k = 0; k < expected.size(); ++k) {
    wanted[{expected[k].layer, static_cast<int>(expected[k].role)}] = k;
  }

  // model_tensors and access_order, as format::CheckTensorShapes() defines a
  // matching table, but one problem per tensor instead of one summary.
  std::map<std::pair<int32_t, int>, std::string> found;
  std::optional<size_t> last_index;  // forward-pass position of the last known tensor
  std::string last_name;
  for (const TensorEntry& t : layout.manifest.tensors()) {
    if (t.role() == format::ROLE_OTHER) continue;
    const std::string what = RoleAndLayer(t.role(), t.layer());
    if (t.layer() >= 0 && static_cast<uint64_t>(t.layer()) >= model.num_layers()) {
      report.Add("model_tensors", t.name(), t.offset(),
                 absl::StrCat("tensor (", what, ") lies beyond the model's ", model.num_layers(),
                              " layers"));
      continue;
    }
    const auto want = wanted.find({t.layer(), static_cast<int>(t.role())});
    if (want == wanted.end()) {
      const bool bias = t.role() == format::ROLE_ATTN_Q_BIAS ||
                        t.role() == format::ROLE_ATTN_K_BIAS || t.role() == format::ROLE_ATTN_V_BIAS;
      report.Add("model_tensors", t.name(), t.offset(),
                 absl::StrCat("tensor (", what, ") is not used by this model",
                              t.role() == format::ROLE_OUTPUT ? " (embeddings are tied)"
                              : bias                          ? " (attention_bias is false)"
                                                              : ""));
      continue;
    }
    const auto [it, inserted] = found.emplace(want->first, t.name());
    if (!inserted) {
      report.Add("model_tensors", t.name(), t.offset(),
                 absl::StrCat("tensors '", it->second, "' and '", t.name(), "' are both ", what));
      continue;
    }
    const std::vector<uint64_t>& shape = expected[want->second].shape;
    if (!std::equal(shape.begin(), shape.end(), t.shape().begin(), t.shape().end())) {
      report.Add("model_tensors", t.name(), t.offset(),
                 absl::StrCat("tensor (", what, ") has shape ",
                              ShapeString({t.shape().data(), static_cast<size_t>(t.shape_size())}),
                              ", expected ", ShapeString(shape)));
    }
    if (last_index.has_value() && want->second < *last_index) {
      report.Add("access_order", t.name(), t.offset(),
                 absl::StrCat("tensor (", what, ") is stored after '", last_name,
                              "', but the forward pass reads it first"));
    } else {
      last_index = want->second;
      last_name = t.name();
    }
  }
  for (const format::ExpectedTensor& e : expected) {
    if (!found.contains({e.layer, static_cast<int>(e.role)})) {
      report.Add("model_tensors", "", std::nullopt,
                 absl::StrCat("missing tensor ", RoleAndLayer(e.role, e.layer),
                              " (expected shape ", ShapeString(e.shape), ")"));
    }
  }

  // layer_ranges: every layer of the model is one aligned range of the file.
  const uint64_t alignment = layout.header.alignment();
  uint64_t layers_found = 0;
  for (uint32_t l = 0; l < model.num_layers(); ++l) {
    const format::ByteRange range =
        l < layout.layer_ranges.size() ? layout.layer_ranges[l] : format::ByteRange{};
    if (range.size == 0) {
      report.Add("layer_ranges", "", std::nullopt,
                 absl::StrCat("layer ", l, " of ", model.num_layers(),
                              " has no tensors in the file"));
      continue;
    }
    ++layers_found;
    if (range.offset % alignment != 0 || range.size % alignment != 0) {
      report.Add("layer_ranges", "", range.offset,
                 absl::StrCat("layer ", l, " range [", range.offset, ", +", range.size,
                              ") is not aligned to ", alignment));
    }
  }
  report.SetDetail("layer_ranges", absl::StrCat(layers_found, " of ", model.num_layers(),
                                                " layers, each one aligned range"));
}

}  // namespace zcpack::validator::internal

#include "zcpack/format/structural_rules.h"

#include <algorithm>
#include <array>
#include <iterator>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tensor_table.h"
#include "xxhash.h"
#include "zcpack/format/coding.h"
#include "zcpack/format/format_constants.h"
#include "zcpack/status_macros.h"
#include "zstd.h"

namespace zcpack::format {
namespace {

// One name per rule of format/SPEC.md, "Reader checks and limits", and of the
// model (model_layout.h); the names are `zcpack verify`'s check names and the
// `check` of the broken-container table (tests/testing/container_fixtures.h).
constexpr RuleInfo kRules[] = {
    {"magic", "header", "the file starts with the zcpack magic"},
    {"version", "header", "the major format version is 1"},
    {"header_checksum", "header", "the header's XXH3-64 matches its bytes"},
    {"header_size", "header", "the header size field is 128"},
    {"reserved", "header", "reserved header bytes are zero"},
    {"required_features", "header", "no unknown required-feature bits are set"},
    {"header_alignment", "header", "the alignment is 2^12 to 2^21"},
    {"file_size", "header", "the file is exactly as long as the header records"},
    {"data_region", "header", "the data region is aligned and inside the file"},
    {"manifest_bounds", "header", "the manifest follows the data region and ends the file"},
    {"manifest_limit", "header",
     "the manifest's stored and decoded sizes are within the limits and what the file can hold"},
    {"manifest_size", "header", "an uncompressed manifest declares its stored size as decoded size"},
    {"manifest_checksum", "manifest", "the manifest's XXH3-64 matches its bytes"},
    {"zstd_size", "manifest", "the zstd frame declares and decodes to the header's decoded size"},
    {"zstd_frame", "manifest", "a compressed manifest is exactly one zstd frame"},
    {"manifest_parse", "manifest", "the manifest parses as a protobuf Manifest"},
    {"tokenizer_bounds", "manifest",
     "every tokenizer blob is inline, or lies aligned between the data region and the manifest, "
     "in order"},
    {"tensor_limit", "tensor_table", "the tensor count is within the limit"},
    {"empty_name", "tensor_table", "every tensor has a name"},
    {"name_limit", "tensor_table", "every name is within the length limit"},
    {"duplicate_name", "tensor_table", "no two tensors share a name"},
    {"dtype", "tensor_table",
     "every dtype is one of f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, q4_k, q5_k, q6_k"},
    {"rank_limit", "tensor_table", "every rank is within the limit"},
    {"shape_rank", "tensor_table", "every shape has at least one dimension"},
    {"shape_zero", "tensor_table", "no shape has a zero dimension"},
    {"block_multiple", "tensor_table", "every last dimension is a multiple of the block size"},
    {"shape_overflow", "tensor_table", "every byte size fits in 2^63"},
    {"nbytes", "tensor_table", "every nbytes equals the size its dtype and shape need"},
    // Rules of internal::kSizedTensorRules (tensor_table.h) go here, in its order.
    {"layout", "tensor_table",
     "every block order is row-major, or row groups on a q4_0/q8_0/q4_k matrix with the feature bit"},
    {"alignment", "tensor_table", "every tensor offset is a multiple of the alignment"},
    {"tensor_bounds", "tensor_table", "every tensor lies inside the data region"},
    {"order", "tensor_table", "tensor offsets strictly increase in manifest order"},
    {"overlap", "tensor_table", "no tensor overlaps the aligned extent of the one before"},
    {"layer_range", "tensor_table", "every layer index is -1 or below the tensor count"},
    {"layer_order", "tensor_table", "layers appear in non-decreasing order"},
    {"layer_contiguity", "tensor_table", "each layer's tensors are one contiguous run"},
    {"layer_outside", "tensor_table", "tensors outside the layers come before or after all layers"},
    {"model_info", "model", "the model's hyperparameters are valid"},
    {"rope", "model", "the RoPE row layout is recorded and head_dim is even"},
    {"model_tensors", "model", "every tensor the model needs is present with its shape, once"},
    {"access_order", "model", "tensors are stored in the order the forward pass reads them"},
    {"layer_ranges", "model", "each of the model's layers is one aligned byte range"},
};

// Decoded manifest bytes allowed beyond the tensor entries: model info,
// provenance, and the framing of tokenizer blobs (whose data, already
// compressed, is counted by the stored size).
constexpr uint64_t kManifestFixedAllowance = uint64_t{1} << 20;
// Decoded bytes of one tensor entry beyond its name: role, layer, dtype, up
// to 8 dimensions, offset, nbytes, checksum, statistics, source dtype and
// layout take under 150; the rest leaves room for fields of later minors.
constexpr uint64_t kTensorEntryAllowance = 512;

std::string HexBytes(std::span<const uint8_t> bytes) {
  return absl::StrJoin(bytes, " ", [](std::string* out, uint8_t b) {
    absl::StrAppend(out, absl::Hex(b, absl::kZeroPad2));
  });
}

uint64_t SaturatingAdd(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

std::string Hex64(uint64_t v) { return absl::StrCat("0x", absl::Hex(v, absl::kZeroPad16)); }

// "" when every tokenizer blob of `manifest` is inline or placed as
// SPEC.md's "Tokenizer blobs" says; otherwise the first blob's problem.
std::string TokenizerBlobProblem(const ContainerHeader& h, const Manifest& manifest) {
  const uint64_t data_end = h.data_offset + h.data_size;  // checked by "data_region"
  uint64_t previous_end = data_end;
  for (int i = 0; i < manifest.tokenizers_size(); ++i) {
    const TokenizerBlob& blob = manifest.tokenizers(i);
    const std::string what = absl::StrCat("tokenizer blob ", i, " (", blob.kind(), ")");
    if (blob.offset() == 0 && blob.stored_size() == 0 && blob.xxh3() == 0) continue;  // inline
    if (!blob.zstd_data().empty()) {
      return absl::StrCat(what, " is both inline and stored at offset ", blob.offset());
    }
    if (blob.stored_size() == 0) return absl::StrCat(what, " has offset ", blob.offset(), " but no bytes");
    if (blob.offset() % h.alignment() != 0) {
      return absl::StrCat(what, " offset ", blob.offset(), " is not a multiple of the alignment ",
                          h.alignment());
    }
    if (blob.offset() < previous_end) {
      return absl::StrCat(what, " at offset ", blob.offset(), " starts before ", previous_end,
                          i == 0 ? " (the end of the data region)" : " (the end of the blob before)");
    }
    if (blob.stored_size() > h.manifest_offset - blob.offset()) {
      return absl::StrCat(what, " of ", blob.stored_size(), " bytes at offset ", blob.offset(),
                          " runs past the manifest at ", h.manifest_offset);
    }
    previous_end = blob.offset() + blob.stored_size();
  }
  return "";
}

// Reports header and manifest rules: every problem is at a fixed offset and
// about no tensor.
class FileRules {
 public:
  FileRules(ProblemSink& sink, CheckedContainer* out) : sink_(sink), out_(out) {}

  void Ran(absl::string_view check) { sink_.Ran(check); }

  // A failure after which later fields cannot be trusted: always stops.
  bool Fail(absl::string_view check, absl::StatusCode code, uint64_t offset, std::string detail) {
    sink_.Add({check, code, "", std::nullopt, offset, std::move(detail)});
    out_->stopped_at = std::string(check);
    return false;
  }
  // A failure that leaves the other fields meaningful: goes on if the sink does.
  bool Note(absl::string_view check, uint64_t offset, std::string detail) {
    if (sink_.Add({check, absl::StatusCode::kDataLoss, "", std::nullopt, offset,
                   std::move(detail)})) {
      return true;
    }
    out_->stopped_at = std::string(check);
    return false;
  }

 private:
  ProblemSink& sink_;
  CheckedContainer* out_;
};

std::string NotAContainer(std::span<const uint8_t> present) {
  const size_t compared = std::min(present.size(), kMagicSize);
  std::string hint;
  // "\r\n" turned into "\n" shifts everything after byte 4 by one.
  if (present.size() >= 6 && std::equal(present.begin(), present.begin() + 4, std::begin(kMagic)) &&
      present[4] == '\n' && present[5] == 0x1A) {
    hint = " (\\r\\n became \\n: was the file copied in text mode?)";
  }
  return absl::StrCat("not a zcpack container (bad magic): the file starts with ",
                      present.empty() ? std::string("nothing") : HexBytes(present.first(compared)),
                      ", expected ", HexBytes(kMagic), hint);
}

// The header rules, in the reader's order. Returns true when the header's
// offsets and sizes can be used.
bool CheckHeader(std::span<const uint8_t, kHeaderSize> raw, uint64_t file_size,
                 const ReaderLimits& limits, FileRules& rules, ContainerHeader* out) {
  const ContainerHeader h = DecodeHeader(raw);
  *out = h;
  using absl::StatusCode;
  rules.Ran("magic");
  if (!std::equal(h.magic.begin(), h.magic.end(), std::begin(kMagic))) {
    return rules.Fail("magic", StatusCode::kInvalidArgument, kOffMagic, NotAContainer(raw));
  }
  rules.Ran("version");
  if (h.major_version != kMajorVersion) {
    return rules.Fail("version", StatusCode::kUnimplemented, kOffMajorVersion,
                      absl::StrCat("container format version ", h.major_version, ".",
                                   h.minor_version, "; this reader supports ", kMajorVersion,
                                   ".x"));
  }
  rules.Ran("header_checksum");
  const uint64_t checksum = HeaderChecksum(raw);
  if (checksum != h.header_xxh3) {
    return rules.Fail("header_checksum", StatusCode::kDataLoss, kOffHeaderXxh3,
                      absl::StrCat("header checksum mismatch (stored ", Hex64(h.header_xxh3),
                                   ", computed ", Hex64(checksum), " over bytes [0, ",
                                   kOffHeaderXxh3, "))"));
  }
  rules.Ran("header_size");
  if (h.header_size != kHeaderSize &&
      !rules.Note("header_size", kOffHeaderSize,
                  absl::StrCat("header size field is ", h.header_size, ", expected ",
                               kHeaderSize))) {
    return false;
  }
  rules.Ran("reserved");
  if (h.reserved0 != 0 &&
      !rules.Note("reserved", kOffHeaderReserved0,
                  absl::StrCat("reserved header bytes are not zero: reserved0 is ", h.reserved0))) {
    return false;
  }
  for (size_t i = 0; i < h.reserved.size(); ++i) {
    if (h.reserved[i] == 0) continue;
    if (!rules.Note("reserved", kOffReserved + i,
                    absl::StrCat("reserved header bytes are not zero: byte ", kOffReserved + i,
                                 " is 0x", absl::Hex(h.reserved[i], absl::kZeroPad2)))) {
      return false;
    }
    break;
  }
  rules.Ran("required_features");
  if ((h.required_features & ~kKnownRequiredFeatures) != 0) {
    return rules.Fail("required_features", StatusCode::kUnimplemented, kOffRequiredFeatures,
                      absl::StrCat("container requires unknown features 0x",
                                   absl::Hex(h.required_features & ~kKnownRequiredFeatures),
                                   "; a newer reader is needed"));
  }
  rules.Ran("header_alignment");
  if (h.alignment_log2 < kMinAlignmentLog2 || h.alignment_log2 > kMaxAlignmentLog2) {
    return rules.Fail("header_alignment", StatusCode::kDataLoss, kOffAlignmentLog2,
                      absl::StrCat("alignment 2^", h.alignment_log2, " outside [2^",
                                   kMinAlignmentLog2, ", 2^", kMaxAlignmentLog2, "]"));
  }
  rules.Ran("file_size");
  if (h.file_size != file_size) {
    return rules.Fail("file_size", StatusCode::kDataLoss, kOffFileSize,
                      absl::StrCat("file is ", file_size, " bytes but its header records ",
                                   h.file_size,
                                   file_size < h.file_size ? " (truncated)" : " (trailing bytes)"));
  }
  rules.Ran("data_region");
  const uint64_t alignment = h.alignment();
  if (h.data_offset < kHeaderSize || h.data_offset % alignment != 0 ||
      h.data_size % alignment != 0 || !ByteRangeInBounds(h.data_offset, h.data_size, file_size)) {
    return rules.Fail("data_region", StatusCode::kDataLoss, kOffDataOffset,
                      absl::StrCat("data region [", h.data_offset, ", +", h.data_size,
                                   ") is misaligned (alignment ", alignment,
                                   ") or outside the ", file_size, "-byte file"));
  }
  rules.Ran("manifest_bounds");
  if (h.manifest_offset < h.data_offset + h.data_size ||
      !ByteRangeInBounds(h.manifest_offset, h.manifest_size, file_size) ||
      h.manifest_offset + h.manifest_size != file_size) {
    return rules.Fail("manifest_bounds", StatusCode::kDataLoss, kOffManifestOffset,
                      absl::StrCat("manifest [", h.manifest_offset, ", +", h.manifest_size,
                                   ") does not end the file (", file_size,
                                   " bytes) after the data region, which ends at ",
                                   h.data_offset + h.data_size));
  }
  rules.Ran("manifest_limit");
  if (h.manifest_size > limits.max_manifest_bytes) {
    return rules.Fail("manifest_limit", StatusCode::kResourceExhausted, kOffManifestSize,
                      absl::StrCat("manifest of ", h.manifest_size, " bytes, over the limit of ",
                                   limits.max_manifest_bytes));
  }
  if (h.manifest_raw_size > limits.max_manifest_raw_bytes) {
    return rules.Fail("manifest_limit", StatusCode::kResourceExhausted, kOffManifestRawSize,
                      absl::StrCat("manifest decodes to ", h.manifest_raw_size,
                                   " bytes, over the limit of ", limits.max_manifest_raw_bytes));
  }
  if (const uint64_t most = MaxManifestRawBytes(h, limits); h.manifest_raw_size > most) {
    return rules.Fail(
        "manifest_limit", StatusCode::kDataLoss, kOffManifestRawSize,
        absl::StrCat("manifest decodes to ", h.manifest_raw_size, " bytes from ", h.manifest_size,
                     " stored, more than a manifest can hold for a data region of ", h.data_size,
                     " bytes (at most ", h.data_size / alignment, " tensors): at most ", most,
                     " bytes; refused before decoding"));
  }
  rules.Ran("manifest_size");
  if ((h.required_features & kFeatureZstdManifest) == 0 && h.manifest_raw_size != h.manifest_size) {
    return rules.Fail("manifest_size", StatusCode::kDataLoss, kOffManifestRawSize,
                      absl::StrCat("uncompressed manifest of ", h.manifest_size,
                                   " bytes declares a decoded size of ", h.manifest_raw_size));
  }
  return true;
}

// The manifest rules over the stored bytes. Returns the decoded bytes, or
// nullopt after reporting a problem.
std::optional<std::string> DecodeManifest(const ContainerHeader& h, std::string stored,
                                          FileRules& rules) {
  using absl::StatusCode;
  const uint64_t at = h.manifest_offset;
  rules.Ran("manifest_checksum");
  const uint64_t checksum = XXH3_64bits(stored.data(), stored.size());
  if (checksum != h.manifest_xxh3) {
    rules.Fail("manifest_checksum", StatusCode::kDataLoss, at,
               absl::StrCat("manifest checksum mismatch (stored ", Hex64(h.manifest_xxh3),
                            ", computed ", Hex64(checksum), ")"));
    return std::nullopt;
  }
  if ((h.required_features & kFeatureZstdManifest) == 0) return stored;
  rules.Ran("zstd_size");
  const unsigned long long frame_size = ZSTD_getFrameContentSize(stored.data(), stored.size());
  // UNKNOWN is checked by name: as a number it is 2^64 - 1, which a header
  // could declare when the raw-size limit is lifted to the maximum.
  if (frame_size == ZSTD_CONTENTSIZE_ERROR || frame_size == ZSTD_CONTENTSIZE_UNKNOWN ||
      frame_size != h.manifest_raw_size) {
    rules.Fail("zstd_size", StatusCode::kDataLoss, at,
               absl::StrCat("zstd manifest frame declares ",
                            frame_size == ZSTD_CONTENTSIZE_ERROR     ? std::string("an invalid frame")
                            : frame_size == ZSTD_CONTENTSIZE_UNKNOWN ? std::string("no size")
                                : absl::StrCat(frame_size, " bytes"),
                            " but the header declares ", h.manifest_raw_size));
    return std::nullopt;
  }
  rules.Ran("zstd_frame");
  // SPEC.md, feature bit 0: the manifest is exactly one zstd frame. Without
  // this, skippable or empty frames could trail it unnoticed.
  const size_t frame_bytes = ZSTD_findFrameCompressedSize(stored.data(), stored.size());
  if (ZSTD_isError(frame_bytes) || frame_bytes != stored.size()) {
    rules.Fail("zstd_frame", StatusCode::kDataLoss, at,
               absl::StrCat("zstd manifest of ", stored.size(), " bytes is not exactly one frame",
                            ZSTD_isError(frame_bytes)
                                ? absl::StrCat(" (", ZSTD_getErrorName(frame_bytes), ")")
                                : absl::StrCat(" (first frame: ", frame_bytes, " bytes)")));
    return std::nullopt;
  }
  // Bounded by MaxManifestRawBytes(), checked with the header; ZSTD_decompress
  // writes no more than the buffer holds and fails if the frame has more.
  std::string raw(static_cast<size_t>(h.manifest_raw_size), '\0');
  const size_t n = ZSTD_decompress(raw.data(), raw.size(), stored.data(), stored.size());
  if (ZSTD_isError(n) || n != raw.size()) {
    rules.Fail("zstd_size", StatusCode::kDataLoss, at,
               absl::StrCat("zstd manifest does not decode to its declared ", raw.size(), " bytes",
                            ZSTD_isError(n) ? absl::StrCat(" (", ZSTD_getErrorName(n), ")")
                                            : absl::StrCat(" (got ", n, ")")));
    return std::nullopt;
  }
  return raw;
}

}  // namespace

std::span<const RuleInfo> StructuralRules() { return kRules; }

uint64_t MaxManifestRawBytes(const ContainerHeader& header, const ReaderLimits& limits) {
  const uint64_t cap = limits.max_manifest_raw_bytes;
  // Every term is capped by the limit, so only the sums can overflow, and
  // they saturate (a limit lifted to 2^64 - 1 must not wrap).
  const uint64_t units = header.data_size >> std::min<uint32_t>(header.alignment_log2, 63);
  const uint64_t per_tensor = std::min(limits.max_name_bytes, cap) + kTensorEntryAllowance;
  const uint64_t tensors = std::min(units, cap / per_tensor + 1);
  const uint64_t total = SaturatingAdd(
      SaturatingAdd(kManifestFixedAllowance, std::min(header.manifest_size, cap)),
      tensors * per_tensor);
  return std::min(total, cap);
}

absl::StatusOr<CheckedContainer> CheckContainer(const ReadAtFn& read, uint64_t file_size,
                                                const ReaderLimits& limits, ProblemSink& sink) {
  CheckedContainer out;
  FileRules rules(sink, &out);
  std::array<uint8_t, kHeaderSize> raw{};
  if (file_size < kHeaderSize) {
    const std::span<uint8_t> present(raw.data(), static_cast<size_t>(file_size));
    ZCPACK_RETURN_IF_ERROR(read(0, present));
    // Truncated if what is there starts like the magic, else not a container.
    const size_t compared = std::min(present.size(), kMagicSize);
    rules.Ran("magic");
    if (std::equal(present.begin(), present.begin() + compared, std::begin(kMagic))) {
      rules.Ran("file_size");
      rules.Fail("file_size", absl::StatusCode::kDataLoss, 0,
                 absl::StrCat("truncated: the file is ", file_size,
                              " bytes, the header alone needs ", kHeaderSize));
    } else {
      rules.Fail("magic", absl::StatusCode::kInvalidArgument, 0, NotAContainer(present));
    }
    return out;
  }
  ZCPACK_RETURN_IF_ERROR(read(0, raw));
  if (!CheckHeader(raw, file_size, limits, rules, &out.header)) return out;
  out.header_ok = true;
  const ContainerHeader& h = out.header;
  std::string stored(static_cast<size_t>(h.manifest_size), '\0');  // bounded by the limits
  ZCPACK_RETURN_IF_ERROR(read(
      h.manifest_offset, std::span<uint8_t>(reinterpret_cast<uint8_t*>(stored.data()), stored.size())));
  std::optional<std::string> manifest_bytes = DecodeManifest(h, std::move(stored), rules);
  if (!manifest_bytes.has_value()) return out;
  rules.Ran("manifest_parse");
  if (!out.manifest.ParseFromString(*manifest_bytes)) {
    rules.Fail("manifest_parse", absl::StatusCode::kDataLoss, h.manifest_offset,
               absl::StrCat("manifest of ", manifest_bytes->size(),
                            " decoded bytes does not parse as a protobuf Manifest"));
    return out;
  }
  manifest_bytes.reset();
  rules.Ran("tokenizer_bounds");
  if (const std::string problem = TokenizerBlobProblem(h, out.manifest); !problem.empty()) {
    rules.Fail("tokenizer_bounds", absl::StatusCode::kDataLoss, h.manifest_offset, problem);
    return out;
  }
  out.manifest_ok = true;
  const internal::DataLayout layout{h.alignment(), h.data_offset, h.data_size,
                                    h.required_features};
  internal::CheckTensorTable(layout, limits, sink, &out);
  return out;
}

std::vector<PaddingGap> PaddingGaps(const ContainerHeader& header, const Manifest& manifest) {
  std::vector<PaddingGap> gaps;
  auto add_gap = [&gaps](uint64_t begin, uint64_t end, std::optional<size_t> after) {
    if (end > begin) gaps.push_back({begin, end - begin, after});
  };
  // The rest of the header's page (the header's own bytes are covered by its
  // checksum).
  add_gap(kHeaderSize, header.data_offset, std::nullopt);
  const uint64_t data_end = header.data_offset + header.data_size;
  uint64_t cursor = header.data_offset;
  std::optional<size_t> previous;
  for (int i = 0; i < manifest.tensors_size(); ++i) {
    const TensorEntry& t = manifest.tensors(i);
    add_gap(cursor, t.offset(), previous);
    cursor = t.offset() + t.nbytes();
    previous = static_cast<size_t>(i);
  }
  add_gap(cursor, data_end, previous);
  cursor = data_end;
  for (const TokenizerBlob& blob : manifest.tokenizers()) {
    if (blob.stored_size() == 0) continue;  // stored inside the manifest
    add_gap(cursor, blob.offset(), std::nullopt);
    cursor = blob.offset() + blob.stored_size();
  }
  add_gap(cursor, header.manifest_offset, std::nullopt);
  return gaps;
}

uint64_t PaddingBytes(const ContainerHeader& header, const Manifest& manifest) {
  uint64_t total = 0;
  for (const PaddingGap& gap : PaddingGaps(header, manifest)) total += gap.size;
  return total;
}

}  // namespace zcpack::format

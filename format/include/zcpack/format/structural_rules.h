// The structural rules of a container (format/SPEC.md, "Reader checks and
// limits"), in one place, for every caller:
//   - format::Container::Open() applies them with a FirstProblem sink and
//     returns the first broken rule as its status;
//   - `zcpack verify` (the validator) applies them with a sink that lists
//     every problem under its rule's name;
//   - the runtime applies the model rules (model_layout.h, CheckModel()) the
//     same way at load.
// So a file the reader or the runtime refuses is one verify reports, with the
// same words, and the two cannot drift apart.
//
// Rules over the header and the manifest bytes stop at the first failure that
// makes later fields untrustworthy (CheckedContainer::stopped_at names it);
// rules over the tensor table go through every tensor when the sink lets them.
//
// Trust: everything read is untrusted; every allocation is bounded by
// ReaderLimits and by the file's own size before it is made.
// Thread-safety: the functions keep no state; concurrent calls are fine.
#ifndef ZCPACK_FORMAT_STRUCTURAL_RULES_H_
#define ZCPACK_FORMAT_STRUCTURAL_RULES_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "zcpack/format/container_reader.h"
#include "zcpack/format/header.h"
#include "zcpack/format/manifest.pb.h"
#include "zcpack/format/problem.h"

namespace zcpack::format {

// One rule: its stable name (the check name `zcpack verify` reports), its
// group ("header", "manifest", "tensor_table" or "model") and what it checks.
struct RuleInfo {
  absl::string_view name;
  absl::string_view group;
  absl::string_view description;
};

// StructuralRules(): every rule, in the order the checkers apply them.
std::span<const RuleInfo> StructuralRules();

// What the container rules learned, for later stages (checksums, model
// rules, comparisons).
struct CheckedContainer {
  bool header_ok = false;      // offsets and sizes in the header can be used
  bool manifest_ok = false;    // `manifest` holds the parsed manifest
  bool table_checked = false;  // the tensor table was within the limits and checked
  bool table_ok = false;       // ... and broke no rule
  // The rule whose failure stopped the checks (a header or manifest rule, or
  // "tensor_limit"); empty when they ran to the end.
  std::string stopped_at;
  ContainerHeader header;
  Manifest manifest;
  // Per tensor: its nbytes data bytes lie inside the data region and after
  // the previous placed tensor (so they can be hashed), and its dtype, shape,
  // nbytes and layout agree (so they can be decoded, in ggml's block order
  // through format/row_groups.h).
  std::vector<bool> placed;
  std::vector<bool> sized;
  // Index = layer: the aligned range of the layer's placed tensors (size 0
  // when it has none). Never longer than the tensor table.
  std::vector<ByteRange> layer_ranges;
};

// Reads dst.size() bytes at `offset`; the checker only asks for ranges it
// has checked to lie inside the file.
using ReadAtFn = std::function<absl::Status(uint64_t offset, std::span<uint8_t> dst)>;

// CheckContainer(): applies the header, manifest and tensor-table rules to a
// file of `file_size` bytes read through `read`, reporting to `sink`. Returns
// what it learned; fails only when `read` fails (its status).
absl::StatusOr<CheckedContainer> CheckContainer(const ReadAtFn& read, uint64_t file_size,
                                                const ReaderLimits& limits, ProblemSink& sink);

// MaxManifestRawBytes(): the most a manifest can legitimately decode to in a
// container with this header: a fixed allowance for the model, provenance
// and tokenizers (which are stored compressed inside the manifest, so they
// count at most their stored size), plus one tensor entry with a name of
// limits.max_name_bytes for every alignment unit of the data region (each
// tensor takes at least one), capped by limits.max_manifest_raw_bytes. A
// declared decoded size above it is refused before anything is decoded: a
// small file cannot make the reader allocate or parse gigabytes.
uint64_t MaxManifestRawBytes(const ContainerHeader& header, const ReaderLimits& limits);

// One run of zero fill between the parts of a container.
struct PaddingGap {
  uint64_t offset = 0;
  uint64_t size = 0;
  // The tensor (index into the manifest's table) whose padding it is, the
  // gap from its end to the next tensor or to the end of the data region;
  // none for the rest of the header's page, the data region before the first
  // tensor, and the gaps around tokenizer blobs and before the manifest.
  std::optional<size_t> after_tensor;
};

// PaddingGaps(): every byte range of the file that holds none of the
// header, a tensor's data, a tokenizer blob or the manifest, in file order:
// the alignment padding, which the format requires to be zero (no checksum
// covers it). The one definition of "padding": `zcpack verify` scans these
// ranges and `zcpack inspect` totals them (PaddingBytes()). Trusts that the
// tensor table and the blob ranges passed the structural rules (in file
// order, inside their regions, not overlapping).
std::vector<PaddingGap> PaddingGaps(const ContainerHeader& header, const Manifest& manifest);

// PaddingBytes(): the total size of PaddingGaps().
uint64_t PaddingBytes(const ContainerHeader& header, const Manifest& manifest);

}  // namespace zcpack::format

#endif  // ZCPACK_FORMAT_STRUCTURAL_RULES_H_

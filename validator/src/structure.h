// Internal: the structure level of Verify(): the header, the manifest and the
// tensor table, checked in the reader's order (format/SPEC.md, "Reader checks
// and limits"), and the model checks over the tensor table.
//
// These checks repeat the reader's rules on purpose: the reader stops at the
// first defect, while a verifier names every defect with its own check. Header
// and manifest checks stop at the first failure that leaves later fields
// untrustworthy; tensor-table and model checks go through every tensor.
// Verify() also runs the reader itself when these checks pass, so the two
// cannot disagree silently.
#ifndef ZCPACK_VALIDATOR_SRC_STRUCTURE_H_
#define ZCPACK_VALIDATOR_SRC_STRUCTURE_H_

#include <vector>

#include "absl/status/statusor.h"
#include "byte_source.h"
#include "report_builder.h"
#include "zcpack/format/container_reader.h"
#include "zcpack/format/header.h"
#include "zcpack/format/manifest.pb.h"

namespace zcpack::validator::internal {

// What the structure checks learned, for the later stages.
struct ContainerLayout {
  bool header_ok = false;      // offsets and sizes in the header can be used
  bool manifest_ok = false;    // `manifest` holds the parsed manifest
  bool table_checked = false;  // the tensor table was within the limits and checked
  bool table_ok = false;       // ... and has no problem at all
  format::ContainerHeader header;
  format::Manifest manifest;
  // Per tensor: its nbytes data bytes lie inside the data region (so they
  // can be hashed), and its dtype, shape, nbytes and layout agree (so they
  // can be decoded, in ggml's block order through format/row_groups.h).
  std::vector<bool> placed;
  std::vector<bool> sized;
  // Index = layer: the aligned range of the layer's placed tensors (size 0
  // when it has none).
  std::vector<format::ByteRange> layer_ranges;
};

// CheckStructure(): the header, manifest and tensor-table checks, reported
// through `report`. Fails only when the bytes cannot be read.
absl::StatusOr<ContainerLayout> CheckStructure(const ByteSource& source,
                                               const format::ReaderLimits& limits,
                                               ReportBuilder& report);

// CheckModel(): model_info, model_tensors, access_order and layer_ranges over
// a checked tensor table (left as not reached when there is none).
void CheckModel(const ContainerLayout& layout, ReportBuilder& report);

}  // namespace zcpack::validator::internal

#endif  // ZCPACK_VALIDATOR_SRC_STRUCTURE_H_

// Internal: the structure level of Verify(): format's structural rules
// (zcpack/format/structural_rules.h) over the header, the manifest and the
// tensor table, then the model rules (format::CheckModel()), every problem
// reported through a ReportBuilder.
//
// The rules are format's own, the same code the reader and the runtime apply
// up to the first problem; here they list every problem, each under its
// rule's name. Rules over the header and the manifest bytes stop at the first
// failure that leaves later fields untrustworthy; tensor-table and model
// rules go through every tensor.
#ifndef ZCPACK_VALIDATOR_SRC_STRUCTURE_H_
#define ZCPACK_VALIDATOR_SRC_STRUCTURE_H_

#include "absl/status/statusor.h"
#include "byte_source.h"
#include "report_builder.h"
#include "zcpack/format/container_reader.h"
#include "zcpack/format/structural_rules.h"

namespace zcpack::validator::internal {

// What the structure checks learned, for the later stages.
using ContainerLayout = format::CheckedContainer;

// CheckStructure(): the header, manifest and tensor-table rules, reported
// through `report`. Fails only when the bytes cannot be read.
absl::StatusOr<ContainerLayout> CheckStructure(const ByteSource& source,
                                               const format::ReaderLimits& limits,
                                               ReportBuilder& report);

// CheckModel(): the model rules over a checked tensor table (left as not
// reached when there is none).
void CheckModel(const ContainerLayout& layout, ReportBuilder& report);

}  // namespace zcpack::validator::internal

#endif  // ZCPACK_VALIDATOR_SRC_STRUCTURE_H_

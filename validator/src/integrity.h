// Internal: the full level of Verify(): every tensor's XXH3-64 and the zero
// fill of every padding byte.
//
// Work is balanced across threads by size: tensors and padding gaps are
// taken largest first (a single XXH3 digest cannot be split between
// threads), so the largest tensors never start last. Each thread streams its
// ranges through ByteSource::Scan() with one buffer of chunk_bytes.
#ifndef ZCPACK_VALIDATOR_SRC_INTEGRITY_H_
#define ZCPACK_VALIDATOR_SRC_INTEGRITY_H_

#include "absl/status/status.h"
#include "byte_source.h"
#include "zcpack/validator/verify.h"
#include "report_builder.h"
#include "structure.h"

namespace zcpack::validator::internal {

// CheckIntegrity(): hashes every placed tensor and, when the whole table is
// sound, scans every padding byte; reports "checksum" and "padding" problems
// in file order and fills report->checksummed_bytes / padding_bytes. Reports
// the bytes read through `progress` (stage "checksums"). Fails only when the
// bytes cannot be read.
absl::Status CheckIntegrity(const ByteSource& source, const ContainerLayout& layout, int threads,
                            size_t chunk_bytes, const VerifyOptions& options,
                            ReportBuilder& builder, VerifyReport* report);

}  // namespace zcpack::validator::internal

#endif  // ZCPACK_VALIDATOR_SRC_INTEGRITY_H_

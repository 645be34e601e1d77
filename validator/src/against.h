// Internal: Verify() with --against: the container compared with the source
// checkpoint it was converted from.
//
// The source is opened with converter::OpenSourceModel() (safetensors file or
// folder, or GGUF). Checks: source_model (hyperparameters equal), source_tensors
// (same names both ways), source_shape, then for each tensor in both with one
// shape: source_data when it is stored in the source's dtype (bytes must be
// equal), otherwise quant_error (RMSE and SNR of the stored values against the
// source, measured as the converter measures them: converter's
// QuantErrorAccumulator over whole rows) and quant_stats (the manifest's
// recorded statistics equal the recomputed ones, which shows the container was
// made from exactly these weights). A tensor stored in LAYOUT_ROW_GROUPS_16 is
// put back into ggml's block order (format::FromRowGroups(), a whole number of
// 16-row groups at a time) before it is compared, so every check means the
// same for both layouts.
// A GGUF file exported from the container (`zcpack export`) is a valid
// source too: a tensor the source does not hold by name is matched by its
// role and layer (the export names a Hugging Face checkpoint's tensors as
// llama.cpp does); where the source records the other RoPE layout, Q and K
// rows (and their biases) are compared through llama.cpp's permutation
// between the half-split and interleaved layouts; and the hyperparameters
// GGUF stores as float32 (RoPE theta, RMS epsilon) and the architecture
// mistral, which llama.cpp runs as llama, compare as the export writes them. Work is cut into pieces of whole rows and
// spread over threads; the accumulators make the statistics independent of
// how it was cut.
#ifndef ZCPACK_VALIDATOR_SRC_AGAINST_H_
#define ZCPACK_VALIDATOR_SRC_AGAINST_H_

#include "absl/status/status.h"
#include "byte_source.h"
#include "report_builder.h"
#include "structure.h"

namespace zcpack::validator::internal {

// CompareWithSource(): the checks above, reported through `builder`; fills
// report->comparisons in file order. Fails when the source cannot be opened
// (its reader's status, prefixed with the source path) or a container read
// fails.
absl::Status CompareWithSource(const ByteSource& container, const ContainerLayout& layout,
                               const VerifyOptions& options, int threads, ReportBuilder& builder,
                               VerifyReport* report);

}  // namespace zcpack::validator::internal

#endif  // ZCPACK_VALIDATOR_SRC_AGAINST_H_

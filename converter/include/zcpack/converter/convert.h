// Convert(): the conversion pipeline behind `zcpack convert`.
//
// source (safetensors file or folder, or GGUF) -> plan (order, dtypes) ->
// quantize on N threads -> container written through format::ContainerWriter.
//
// Streaming: work is cut into chunks of whole rows (a few MiB of source
// each; whole 16-row groups for a tensor stored in LAYOUT_ROW_GROUPS_16,
// which is rearranged chunk by chunk); each thread converts one chunk at a
// time into its own buffer, and
// chunks of a tensor are appended in order, so memory stays bounded by
// threads x chunk size (plus the mapped input pages, which the kernel can
// drop) whatever the model size.
// Deterministic: the chunking does not depend on the thread count, and
// statistics are merged in chunk order, so the output bytes are the same at
// any thread count.
// Atomic: the output appears only when complete (ContainerWriter); it is
// never written over an existing file without `overwrite`, nor over one of
// its own input files. Temporary files that an earlier writer left in the
// output's folder (killed with SIGKILL, say) are removed first when their
// writer is gone (format::TempFile::Create()); the report's notes say so.
#ifndef ZCPACK_CONVERTER_CONVERT_H_
#define ZCPACK_CONVERTER_CONVERT_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "zcpack/format/format_constants.h"
#include "zcpack/format/manifest.pb.h"

namespace zcpack::converter {

struct ConvertProgress {
  uint64_t tensors_done = 0;
  uint64_t tensors_total = 0;
  uint64_t source_bytes_done = 0;
  uint64_t source_bytes_total = 0;
  double seconds = 0;
};

struct ConvertOptions {
  std::string source;
  std::string output;
  // The target type (PlanOptions::quant). DTYPE_UNSPECIFIED: keep every
  // tensor's dtype (as keep_source_dtypes) when the source holds a quantized
  // tensor, else q4_0. Set on a quantized source, it is a request to
  // requantize (PlanOptions::requantize): quantized tensors whose planned
  // dtype differs are decoded and encoded again, their error figures are
  // measured against the source's decoded values, and the report carries
  // one warning naming the largest added error.
  format::DType quant = format::DTYPE_UNSPECIFIED;
  // `--quant keep`: every tensor keeps its source dtype, and a quantized one
  // its block bytes (PlanOptions::keep_source_dtypes). Overrides `quant`.
  bool keep_source_dtypes = false;
  // 0: one per available CPU; more than the CPUs is capped (format::ThreadsFor()).
  int threads = 0;
  uint64_t alignment = format::kDefaultAlignment;
  std::vector<std::string> keep_f16;  // fnmatch patterns over source names
  // The output head's dtype for a quantized target (PlanOptions::output_quant).
  format::DType output_quant = format::DTYPE_UNSPECIFIED;
  // Accept NaN/Inf in source tensors (they become 0 in quantized blocks and
  // are stored as they are in float tensors). Without it, a non-finite value
  // is an error naming the tensor and the element.
  bool allow_nonfinite = false;
  bool overwrite = false;
  // Source bytes per work chunk (rounded to whole rows). Part of the output
  // definition only through determinism tests; any value gives the same bytes.
  uint64_t chunk_bytes = uint64_t{4} << 20;
  // Called from a worker thread, at most every ~100 ms and once at the end.
  std::function<void(const ConvertProgress&)> progress;
  // The block order of the matrices the runtime multiplies by, when their
  // dtype supports it (PlanOptions::matrix_layout, plan.h): row groups, the
  // order the runtime's kernels read in one stream, or ggml's row-major
  // order. Recorded in the provenance as "matrix_layout".
  format::TensorLayout matrix_layout = format::LAYOUT_ROW_GROUPS_16;
  // When set, the tokenizer to carry instead of the source's
  // (OpenTokenizerSource(): a GGUF file's tokenizer.* metadata, a
  // tokenizer.json or a tokenizer.model), for a checkpoint that has none.
  // Recorded in the provenance's sources.
  std::string tokenizer;
};

struct TensorReport {
  std::string name;         // as in the source
  format::TensorRole role = format::ROLE_UNSPECIFIED;
  int32_t layer = -1;
  format::DType source_dtype = format::DTYPE_UNSPECIFIED;
  format::DType dtype = format::DTYPE_UNSPECIFIED;
  format::TensorLayout layout = format::LAYOUT_ROW_MAJOR;
  std::vector<uint64_t> shape;
  uint64_t offset = 0;
  uint64_t source_bytes = 0;
  uint64_t nbytes = 0;
  // True when the stored values differ from the source's; false for a tensor
  // stored as it is, a kept quantized one included (no error figures: its
  // error is the source's, which zcpack cannot know).
  bool has_stats = false;
  format::QuantStats stats;
  std::string fallback_reason;
};

struct ConvertReport {
  std::string output;
  std::vector<std::string> source_files;
  uint64_t source_bytes = 0;   // tensor bytes read
  uint64_t output_bytes = 0;   // container file size
  uint64_t weights = 0;        // elements over all tensors
  uint64_t quantized_weights = 0;
  uint64_t quantized_bytes = 0;
  double bits_per_weight = 0;            // all tensor bytes / all elements
  double quantized_bits_per_weight = 0;  // over quantized tensors only
  int threads = 0;
  // Things the user should know that are not errors (one line each), such as
  // stale temporary files removed from the output's folder.
  std::vector<std::string> notes;
  // Results the user should weigh before using the output (one line each):
  // requantized already-quantized tensors, with the largest error added.
  std::vector<std::string> warnings;
  double open_seconds = 0;
  double convert_seconds = 0;  // quantize + write
  double finish_seconds = 0;   // manifest, fsync, rename
  double total_seconds = 0;
  std::vector<TensorReport> tensors;
};

// Convert(): see the file comment. Errors: the source reader's codes (naming
// the file and the tensor); DataLoss when the tensors do not match the
// model's hyperparameters (missing layer tensor, wrong shape); InvalidArgument
// for bad options or a non-finite source value; AlreadyExists when the output
// exists without `overwrite` or is one of the input files; OS codes for I/O
// (ResourceExhausted for a full disk). Nothing is left at the output path on
// failure.
absl::StatusOr<ConvertReport> Convert(const ConvertOptions& options);

// CheckConvertOptions(): the checks Convert() makes of its options before it
// reads the source: an output path, a positive chunk size, an alignment the
// writer accepts (format::CheckAlignment()), --keep-f16 patterns that are
// valid UTF-8, and target types and a matrix layout the planner produces
// (CheckPlanOptions()). InvalidArgument naming the bad option.
absl::Status CheckConvertOptions(const ConvertOptions& options);

}  // namespace zcpack::converter

#endif  // ZCPACK_CONVERTER_CONVERT_H_

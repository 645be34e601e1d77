// AlignGguf(): a GGUF file straight to a GGUF file with zcpack's layout, for
// users who never want the container: every tensor at a multiple of
// `alignment` (general.alignment), in the order the forward pass reads them
// (converter/plan.h: token embedding, each layer's tensors in execution
// order, so that each layer is one contiguous range, final norm, output
// head; tensors the forward pass does not use follow their layer or end the
// file). Nothing else changes: every metadata key and value as the source
// has it (general.alignment set), every tensor's name, type, shape and
// bytes. `zcpack convert SRC.gguf -o OUT.gguf --to gguf`.
//
// The source is read as `zcpack convert` reads a GGUF file
// (converter::OpenSourceModel(): a llama GGUF whose tensor types zcpack
// knows, checked against its hyperparameters); atomic and deterministic
// output as for ExportToGguf().
#ifndef ZCPACK_EXPORTER_ALIGN_GGUF_H_
#define ZCPACK_EXPORTER_ALIGN_GGUF_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "zcpack/exporter/export.h"
#include "zcpack/format/format_constants.h"

namespace zcpack::exporter {

struct AlignGgufOptions {
  std::string source;
  std::string output;
  // A power of two from 32 to 2 MiB (CheckGgufAlignment()).
  uint64_t alignment = format::kDefaultAlignment;
  bool overwrite = false;
};

// AlignGguf(): see the file comment. The report's tensors are in output
// order; its tokenizer is "as in the source". Errors: InvalidArgument for a
// bad alignment, or a source that is not a GGUF file (naming it); the
// converter's source-reading codes (converter/source_model.h); AlreadyExists
// when the output exists without `overwrite` or is the source; OS codes for
// I/O. Nothing is left at the output path on failure.
absl::StatusOr<ExportReport> AlignGguf(const AlignGgufOptions& options);

}  // namespace zcpack::exporter

#endif  // ZCPACK_EXPORTER_ALIGN_GGUF_H_

// Export to GGUF: the layout zcpack designs (every tensor at a multiple of a
// page-sized alignment, in the order inference reads them, each layer one
// contiguous range) written as a GGUF v3 file that llama.cpp, Ollama or
// LM Studio load unchanged (GGUF allows any power-of-two general.alignment
// and any tensor order).
//
// ExportToGguf(): container -> GGUF.
//   - Metadata for llama.cpp's llama architecture (llama and mistral
//     containers): general.architecture, the llama.* hyperparameters,
//     general.alignment; the tokenizer.* keys from the container's
//     tokenizer (a gguf-metadata blob's keys as they were in the source
//     GGUF, each in the type llama.cpp reads; a tokenizer.json or
//     tokenizer.model read by the runtime's loaders and written as
//     llama.cpp's keys), or tokenizer.ggml.model "none" when it carries
//     none; and the zcpack.source.* keys below.
//   - Tensors in the container's order under llama.cpp's names, each block
//     byte-identical to the container's, in ggml's row-major order (row
//     groups are put back, format::FromRowGroups()). Two changes llama.cpp
//     needs, both lossless: Q and K rows (and biases) of a container that
//     records the Hugging Face half-split RoPE layout are permuted into
//     ggml's interleaved layout (as llama.cpp's convert_hf_to_gguf.py does),
//     and 1-D f16/bf16 tensors (norms, biases) are widened to f32 (ggml's CPU
//     backend multiplies activations only by f32 norms).
//   - Every tensor's XXH3-64 is checked against the manifest as it is read.
//   - Atomic (GgufFileWriter) and deterministic.
//
// Round trip. A GGUF written here carries its container's provenance:
//   zcpack.source.names (string array), zcpack.source.sizes (uint64 array):
//       the container's provenance sources;
//   zcpack.source.tokenizer_file (string): the file name of the container's
//       gguf-metadata tokenizer blob, when that is the tokenizer exported;
//   zcpack.source.tensor_data_xxh3 (uint64): XXH3-64 of every tensor's
//       bytes, in file order, padding excluded.
// `zcpack convert` of such a GGUF records these sources instead of the GGUF
// itself only when the tensor data still hashes to tensor_data_xxh3 (so the
// weights are exactly those the container held); so GGUF -> container ->
// GGUF -> container gives the same container bytes when the same options
// keep the tensors (--quant keep, the default for a quantized GGUF).
#ifndef ZCPACK_EXPORTER_EXPORT_H_
#define ZCPACK_EXPORTER_EXPORT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "zcpack/converter/gguf.h"

namespace zcpack::exporter {

// The metadata keys of the carried provenance (see the file comment),
// defined beside the GGUF reader that reads them back.
inline constexpr const char* kSourceNamesKey = converter::kGgufSourceNamesKey;
inline constexpr const char* kSourceSizesKey = converter::kGgufSourceSizesKey;
inline constexpr const char* kSourceTokenizerFileKey = converter::kGgufSourceTokenizerFileKey;
inline constexpr const char* kSourceTensorDataXxh3Key = converter::kGgufSourceTensorDataXxh3Key;

struct ExportOptions {
  std::string container;
  std::string output;
  // 0: the container's alignment. Else a power of two from 32 to 2 MiB.
  uint64_t alignment = 0;
  bool overwrite = false;
};

struct ExportedTensor {
  std::string name;          // in the GGUF file
  std::string source_name;   // in the container
  std::string ggml_type;     // ggml's name ("Q4_0")
  uint64_t offset = 0;       // absolute, in the GGUF file
  uint64_t nbytes = 0;
  bool rope_permuted = false;  // Q/K rows put in ggml's interleaved layout
  bool widened = false;        // 1-D f16/bf16 written as f32
};

struct ExportReport {
  std::string output;
  uint64_t alignment = 0;
  uint64_t output_bytes = 0;
  uint64_t tensor_bytes = 0;
  // "gguf-metadata", "tokenizer.json", "tokenizer.model", or "none".
  std::string tokenizer;
  std::vector<std::string> notes;
  std::vector<ExportedTensor> tensors;
  double seconds = 0;
};

// CheckExportOptions(): InvalidArgument for no output path or an alignment
// other than 0 or a power of two from 32 to 2 MiB, before anything is read.
absl::Status CheckExportOptions(const ExportOptions& options);

// ExportToGguf(): see the file comment. Errors, each naming the file and,
// where there is one, the tensor: the container reader's codes
// (format/container_reader.h); Unimplemented for an architecture llama.cpp's
// llama loader does not run (qwen2, ...), a tensor llama.cpp's llama
// architecture has no place for (every such tensor named), or a dtype GGUF
// cannot hold; DataLoss for a tensor whose checksum does not match or a
// tokenizer that does not decode; AlreadyExists when the output exists
// without `overwrite` or is the container itself; OS codes for I/O. Nothing
// is left at the output path on failure.
absl::StatusOr<ExportReport> ExportToGguf(const ExportOptions& options);

}  // namespace zcpack::exporter

#endif  // ZCPACK_EXPORTER_EXPORT_H_

// Synthetic llama-shaped models: deterministic safetensors checkpoints with a
// Hugging Face config.json, in the shapes of real models, for tests and
// benchmarks. Weights are drawn from a realistic distribution (scaled
// near-normal values, norms near 1, a few outlier input channels) by a
// counter-based generator, so any element can be produced independently and
// the output is the same at any thread count.
#ifndef ZCPACK_CONVERTER_SYNTH_H_
#define ZCPACK_CONVERTER_SYNTH_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "zcpack/format/manifest.pb.h"

namespace zcpack::converter {

struct SynthShape {
  std::string name;
  format::ModelInfo model;
};

// The built-in shapes: tiny, stories15m, stories110m, llama-1b, llama-7b.
const std::vector<SynthShape>& SynthShapes();

// FindSynthShape(): InvalidArgument (listing the known names) if unknown.
absl::StatusOr<SynthShape> FindSynthShape(absl::string_view name);

// Where Synthesize() stands: weight bytes written of the total, shard files
// finished of the total, seconds since it started.
struct SynthProgress {
  uint64_t bytes_done = 0;
  uint64_t bytes_total = 0;
  uint64_t files_done = 0;
  uint64_t files_total = 0;
  double seconds = 0;
};

struct SynthOptions {
  std::string shape = "tiny";
  // Output folder; created if missing. Existing model files in it are
  // replaced only with `overwrite`.
  std::string out_dir;
  // f16, bf16 or f32.
  format::DType dtype = format::DTYPE_F16;
  uint64_t seed = 1;
  // 0: one per available CPU; more than the CPUs is capped (format::ThreadsFor()).
  int threads = 0;
  // Shard when the weights exceed this many bytes (Hugging Face style, with
  // model.safetensors.index.json).
  uint64_t max_shard_bytes = uint64_t{4} << 30;
  bool overwrite = false;
  // Called from the calling thread after a chunk of weights is written, at
  // most every ~100 ms, and once when all are written. May be empty.
  std::function<void(const SynthProgress&)> progress;
};

struct SynthResult {
  std::vector<std::string> files;  // written, config.json included
  uint64_t weight_bytes = 0;
  uint64_t parameters = 0;
  // One line per stale temporary file of a gone writer removed from the
  // folder (format::TempFile::Create()).
  std::vector<std::string> notes;
};

// CheckSynthOptions(): InvalidArgument for an unknown shape (listing the
// known ones), a dtype other than f16, bf16 or f32, or no output folder; the
// checks Synthesize() makes before it writes anything.
absl::Status CheckSynthOptions(const SynthOptions& options);

// Synthesize(): writes config.json and model.safetensors (or shards plus an
// index) into options.out_dir. Memory stays bounded (a few MiB per thread)
// whatever the shape. Each file is written to a temporary file of its own
// (format::TempFile: concurrent runs never share one; stale ones of gone
// writers are removed first, each with a note) and then installed (never
// over an existing file without `overwrite`).
// AlreadyExists if a target file exists and !overwrite.
absl::StatusOr<SynthResult> Synthesize(const SynthOptions& options);

}  // namespace zcpack::converter

#endif  // ZCPACK_CONVERTER_SYNTH_H_

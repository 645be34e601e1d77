// The zcpack subcommands. Each is a function that takes its options (built
// from flags in zcpack_main.cc), writes its report to `out`, and returns a
// status that main() turns into one stderr line and an exit code.
#ifndef ZCPACK_TOOLS_CLI_COMMANDS_H_
#define ZCPACK_TOOLS_CLI_COMMANDS_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace zcpack::cli {

struct InspectOptions {
  std::string path;
  bool json = false;
  // Also verify every tensor checksum (reads all data).
  bool checksums = false;
};

// RunInspect(): prints the header, model info, tensor table, layer ranges and
// totals of a container. Fails with the reader's status for a bad container.
absl::Status RunInspect(const InspectOptions& options, std::ostream& out);

struct SynthCommandOptions {
  std::string shape;
  std::string out_dir;
  std::string dtype;
  uint64_t seed = 1;
  int threads = 0;
  bool force = false;
  bool json = false;
};

// RunSynth(): writes a synthetic llama-shaped checkpoint (converter/synth.h).
absl::Status RunSynth(const SynthCommandOptions& options, std::ostream& out);

struct ConvertCommandOptions {
  std::string source;
  std::string output;
  std::string quant = "q4_0";
  int threads = 0;
  uint64_t alignment = 16384;
  std::vector<std::string> keep_f16;
  bool allow_nonfinite = false;
  bool json = false;
  bool quiet = false;
  bool force = false;
};

// RunConvert(): converts a checkpoint into a container (converter/convert.h)
// and prints a summary (text, or JSON with per-tensor statistics).
absl::Status RunConvert(const ConvertCommandOptions& options, std::ostream& out);

struct RunCommandOptions {
  std::string path;
  std::string tokens;  // comma-separated prompt token ids
  int max_tokens = 16;
  int threads = 0;
  int context = 0;  // 0: prompt + max_tokens
  float temperature = 0.0f;
  int top_k = 40;
  float top_p = 0.95f;
  uint64_t seed = 1;
  bool stop_at_eos = false;
  std::string advice = "none";
  int prefetch_layers = 4;
  bool populate = false;
  bool mlock = false;
  bool verify = false;
  bool json = false;
};

// RunRun(): opens a container with the runtime, generates tokens from a
// prompt of token ids, and prints them with the open, first-token and decode
// timings.
absl::Status RunRun(const RunCommandOptions& options, std::ostream& out);

}  // namespace zcpack::cli

#endif  // ZCPACK_TOOLS_CLI_COMMANDS_H_

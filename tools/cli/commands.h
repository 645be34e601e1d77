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
#include "zcpack/validator/verify.h"

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
  bool quiet = false;    // no progress line, no summary
  bool verbose = false;  // each file's size
};

// RunSynth(): writes a synthetic llama-shaped checkpoint (converter/synth.h).
absl::Status RunSynth(const SynthCommandOptions& options, std::ostream& out);

// CheckSynthOptions(): InvalidArgument (a usage error) for no --out, an
// unknown --shape or a --dtype synth does not write, without writing anything.
absl::Status CheckSynthOptions(const SynthCommandOptions& options);

struct ConvertCommandOptions {
  std::string source;
  std::string output;
  // A target type, "keep", or "" for the default (keep for a quantized
  // source, else q4_0).
  std::string quant;
  int threads = 0;
  uint64_t alignment = 16384;
  std::vector<std::string> keep_f16;
  std::string output_quant;  // "" for the default
  bool allow_nonfinite = false;
  std::string layout = "row-groups";  // format::ParseLayout() spelling
  std::string tokenizer;  // a file whose tokenizer to carry ("": the source's)
  bool json = false;
  bool quiet = false;    // no progress line, no summary
  bool verbose = false;  // a summary line per tensor
  bool force = false;
  // "gguf": write a GGUF file with zcpack's layout instead of a container
  // (RunConvertToGguf()); "" or "container": a container.
  std::string to;
};

// RunConvert(): converts a checkpoint into a container (converter/convert.h)
// and prints a summary (text, or JSON with per-tensor statistics).
absl::Status RunConvert(const ConvertCommandOptions& options, std::ostream& out);

// CheckConvertOptions(): InvalidArgument (a usage error) for no -o, a --quant
// or --output-quant that is not a target type, a --layout that is not
// row-groups or row-major, a --keep-f16 pattern that is not UTF-8, or an
// --alignment the writer refuses (converter::CheckConvertOptions()), without
// reading the source.
absl::Status CheckConvertOptions(const ConvertCommandOptions& options);

// CheckConvertToGgufOptions(): for `convert --to gguf`: InvalidArgument (a
// usage error) for no -o, a flag that would change a tensor (--quant other
// than keep, --output-quant, --keep-f16, --allow-nonfinite, --tokenizer), an
// alignment that is not a power of two from 32 to 2 MiB, or a readable
// source that is not a GGUF file; reads only the source's first 4 bytes.
absl::Status CheckConvertToGgufOptions(const ConvertCommandOptions& options);

// RunConvertToGguf(): `convert SRC.gguf -o OUT.gguf --to gguf`: the GGUF
// file again with its tensors page-aligned in forward-pass order
// (exporter/align_gguf.h), and a summary (text or JSON).
absl::Status RunConvertToGguf(const ConvertCommandOptions& options, std::ostream& out);

struct ExportCommandOptions {
  std::string path;    // the container
  std::string output;  // the GGUF file
  uint64_t alignment = 0;  // 0: the container's
  bool json = false;
  bool quiet = false;    // no summary
  bool verbose = false;  // a summary line per tensor
  bool force = false;
};

// RunExport(): writes the container as a GGUF file llama.cpp loads
// (exporter/export.h) and prints a summary (text, or JSON with every tensor's
// name, type, offset and size). The exporter's errors.
absl::Status RunExport(const ExportCommandOptions& options, std::ostream& out);

// CheckExportOptions(): InvalidArgument (a usage error) for no -o or an
// --alignment that is not a power of two from 32 to 2 MiB.
absl::Status CheckExportOptions(const ExportCommandOptions& options);

struct RunCommandOptions {
  std::string path;
  std::string tokens;  // comma-separated prompt token ids
  std::string prompt;  // prompt text (the container's tokenizer)
  std::string chat;    // a user message, rendered by the chat template
  std::string system;  // with `chat`: a system message before it
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
  std::string loader = "zcpack";
  // --memory-budget: bytes such as "2GiB" (bench::ParseMemoryBudget());
  // "" for none.
  std::string memory_budget;
  bool json = false;
  bool quiet = false;  // text prompts: no stop line, timings or notes on `log`
};

// RunRun(): opens a container with the runtime and generates from a prompt.
// From token ids (--tokens): prints the generated ids with the open,
// first-token and decode timings. From text (--prompt, or --chat rendered by
// the model's chat template): streams the generated text to `out` as it is
// generated (the --prompt text first; flushed after every token), stopping
// at the tokenizer's end-of-generation tokens, then a newline; the timings go
// to `log`. With --json, one report on `out` instead. Errors beyond the
// runtime's: FailedPrecondition when the container's tokenizers are none the
// runtime reads or its vocabulary has no chat template; Unimplemented for a
// chat template it does not recognise; each naming the file.
absl::Status RunRun(const RunCommandOptions& options, std::ostream& out, std::ostream& log);

// CheckRunOptions(): InvalidArgument (a usage error) for none or more than
// one of --tokens, --prompt and --chat, --system without --chat, malformed
// --tokens, a negative -n or --context, an unknown --loader or --advice, a
// temperature that is not a finite number >= 0, a prompt plus -n beyond what
// a session can hold, or (read from the container's manifest when it opens)
// a token id outside the model's vocabulary, a context longer than its
// max_position_embeddings, or --prompt/--chat for a container that carries
// no tokenizer; without generating anything (nor decoding the tokenizer).
absl::Status CheckRunOptions(const RunCommandOptions& options);

struct VerifyCommandOptions {
  std::string path;
  validator::VerifyOptions verify;
  bool json = false;
  bool quiet = false;    // no progress line; the text report only when a check fails
  bool verbose = false;  // the text report lists every check
};

// RunVerify(): verifies a container (validator/verify.h) and prints the
// report (text, or JSON with --json) to `out`. OK when every check that ran
// passed; DataLoss (exit code 1) naming the problem count and the first
// problem when any failed; the validator's status (exit code 3 for a missing
// or unreadable file) when the checks could not run.
absl::Status RunVerify(const VerifyCommandOptions& options, std::ostream& out);

struct BenchCommandOptions {
  std::string path;
  // Comma-separated loaders, in table order: classic, pread, direct, mmap
  // (alias mmap-naive), zcpack.
  std::string loaders = "classic,pread,direct,mmap,zcpack";
  bool cold = false;  // only the cold state
  bool warm = false;  // only the warm state
  bool both = false;  // both (the default when none of the three is given)
  int runs = 3;
  // Tokens to generate per run, as text (it shares run's --tokens flag);
  // empty means 16.
  std::string tokens;
  int threads = 0;
  // The memory-budget row: "auto" (0.6 x the file), "off", or a byte size
  // such as "20GiB".
  std::string budget = "auto";
  bool budget_given = false;  // --budget on the command line
  // --memory-budget: the budget row's limit, with a third row in it: the
  // zcpack loader streaming under that budget (MemoryPolicy::budget_bytes).
  // "" for none.
  std::string memory_budget;
  std::string timeline_csv;  // empty: no CSV
  std::string plot;          // .svg or .png; empty: no chart
  bool json = false;         // the same as output "json"
  // The report's format: "text" (tables), "json", "csv" or "jsonl" (one
  // line per row, as llama-bench's -o).
  std::string output = "text";
  // Also check zcpack's own performance targets (docs/BENCHMARKS.md).
  bool targets = false;
  bool quiet = false;  // no line per run on stderr
};

// RunBench(): compares the loaders on one container, each run in a fresh
// child process (`zcpack bench-child`), warm and cold, plus a memory-budget
// row in a memory cgroup; prints medians with min and max (as text, JSON,
// CSV or JSON lines), with --targets the project's targets met or missed,
// and optionally the RSS timeline (CSV) and its chart (gnuplot).
// InvalidArgument for bad options; FailedPrecondition for --plot without
// gnuplot; DataLoss when loaders disagree on the first-token logits;
// Internal when a run outside the budget row failed (the report is printed
// first in both cases).
absl::Status RunBench(const BenchCommandOptions& options, std::ostream& out);

// CheckBenchOptions(): InvalidArgument for option values or combinations
// RunBench() would refuse (a usage error), without touching the file.
absl::Status CheckBenchOptions(const BenchCommandOptions& options);

struct TokenizeCommandOptions {
  std::string path;  // a container or a GGUF file
  std::string text;  // the text argument; "-" reads stdin
  bool has_text = false;
  std::string file;  // --file PATH ("-" reads stdin); empty when not given
  bool bos = false;      // add BOS/EOS as the vocabulary says (add_special)
  bool special = false;  // match special tokens written in the text
  bool json = false;
};

// RunTokenize(): tokenizes the text with the tokenizer of a container (its
// gguf-metadata blob) or of a GGUF file (vocabulary-only files included) and
// prints the ids space-separated on one line, or a JSON report. Exit codes as
// for the other commands: FailedPrecondition (no tokenizer), Unimplemented (a
// tokenizer kind or model zcpack does not read), InvalidArgument (malformed
// tokenizer metadata) and DataLoss are 1; a missing file is 3.
absl::Status RunTokenize(const TokenizeCommandOptions& options, std::ostream& out);

// CheckTokenizeOptions(): InvalidArgument (a usage error) unless exactly one
// of the text argument and --file is given.
absl::Status CheckTokenizeOptions(const TokenizeCommandOptions& options);

struct BenchChildOptions {
  std::string path;
  std::string loader;
  int tokens = 16;
  int threads = 0;
  uint64_t memory_budget = 0;  // MemoryPolicy::budget_bytes; 0: none
};

// RunBenchChild(): one measured run (hidden subcommand `bench-child`): opens
// the model with one loader, evaluates the benchmark prompt, generates
// `tokens` tokens greedily and prints one JSON line of timings (CLOCK_MONOTONIC
// timestamps), the first-token logits' XXH3 and argmax, and the KV cache size.
absl::Status RunBenchChild(const BenchChildOptions& options, std::ostream& out);

}  // namespace zcpack::cli

#endif  // ZCPACK_TOOLS_CLI_COMMANDS_H_

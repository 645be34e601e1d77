// zcpack: the command-line program. Flags are defined here and only here;
// each subcommand is a function in tools/cli/ that returns absl::Status, and
// main() turns a failure into one stderr line and a documented exit code
// (tools/cli/exit_codes.h).
#include <csignal>
#include <cstdio>
#include <functional>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "tools/cli/args.h"
#include "tools/cli/commands.h"
#include "tools/cli/exit_codes.h"

ABSL_FLAG(bool, json, false, "Print a machine-readable JSON report instead of text.");
ABSL_FLAG(bool, checksums, false, "inspect: also verify every tensor's checksum.");
ABSL_FLAG(std::string, out, "", "Output path (-o).");
ABSL_FLAG(std::string, shape, "tiny", "synth: model shape.");
ABSL_FLAG(std::string, dtype, "f16", "synth: weight dtype (f16, bf16, f32).");
ABSL_FLAG(uint64_t, seed, 1, "Random seed.");
ABSL_FLAG(int32_t, threads, 0, "Worker threads; 0 means one per hardware thread.");
ABSL_FLAG(bool, force, false, "Overwrite existing output.");
ABSL_FLAG(std::string, quant, "q4_0", "convert: target type (q4_0, q4_k, f16, f32).");
ABSL_FLAG(uint64_t, alignment, 16384, "convert: tensor alignment in bytes.");
ABSL_FLAG(std::vector<std::string>, keep_f16, {}, "convert: tensor name patterns kept in f16.");
ABSL_FLAG(bool, allow_nonfinite, false, "convert: accept NaN/Inf in source tensors.");
ABSL_FLAG(bool, quiet, false, "No progress bar or summary.");
ABSL_FLAG(std::string, tokens, "", "run: comma-separated prompt token ids.");
ABSL_FLAG(int32_t, n, 16, "run: tokens to generate.");
ABSL_FLAG(int32_t, context, 0, "run: KV cache positions (0: prompt + n).");
ABSL_FLAG(float, temperature, 0.0f, "run: sampling temperature (0: greedy).");
ABSL_FLAG(int32_t, top_k, 40, "run: top-k sampling (0: off).");
ABSL_FLAG(float, top_p, 0.95f, "run: nucleus sampling threshold (1: off).");
ABSL_FLAG(bool, stop_at_eos, false, "run: stop at the model's end-of-sequence id.");
ABSL_FLAG(std::string, advice, "none", "run: madvise advice (none, sequential, random, willneed).");
ABSL_FLAG(int32_t, prefetch_layers, 4, "run: layers read ahead of compute (0: off).");
ABSL_FLAG(bool, populate, false, "run: fault every page in at open.");
ABSL_FLAG(bool, mlock, false, "run: lock the mapping in memory.");
ABSL_FLAG(bool, verify, false, "run: verify every checksum at open.");

namespace zcpack::cli {
namespace {

struct Command {
  const char* name;
  const char* synopsis;
  const char* help;  // what it does and each flag, one per line
  std::set<std::string> flags;
  std::set<std::string> repeatable;
  size_t min_positional;
  size_t max_positional;
  std::function<absl::Status(const ParsedArgs&)> run;
};

constexpr const char* kExitCodesHelp =
    "Exit codes:\n"
    "  0  success\n"
    "  1  the input is unsound: not a container, corrupt, unsupported, or a check failed\n"
    "  2  usage error, or a refusal (output exists without --force, output is the input)\n"
    "  3  I/O, system or resource error (missing file, permission, full disk, limit)\n";

const std::vector<Command>& Commands() {
  static const std::vector<Command> commands = {
      {"inspect", "inspect FILE [--json] [--checksums]",
       "Print a container's header, model info, per-tensor table (name, dtype, shape,\n"
       "offset, bytes, layer, checksum, quantization error), layer ranges and totals.\n"
       "Reads only the header and the manifest unless --checksums is given.\n"
       "\n"
       "  --json        JSON report: alignment, model, tensors [{name, dtype, shape,\n"
       "                offset, nbytes, layer, xxh3, ...}], layers, totals\n"
       "  --checksums   also verify every tensor's XXH3-64 (reads all data)\n",
       {"json", "checksums"}, {}, 1, 1,
       [](const ParsedArgs& args) {
         InspectOptions options;
         options.path = args.positional[0];
         options.json = absl::GetFlag(FLAGS_json);
         options.checksums = absl::GetFlag(FLAGS_checksums);
         return RunInspect(options, std::cout);
       }},
      {"convert",
       "convert SRC -o OUT [--quant q4_0|q4_k|f16|f32] [--threads N] [--alignment BYTES] "
       "[--keep-f16 PATTERN]... [--allow-nonfinite] [--json] [--quiet] [--force]",
       "Convert a checkpoint into a zcpack container. SRC is a .safetensors file, a\n"
       "Hugging Face model folder (config.json with model.safetensors, or\n"
       "model.safetensors.index.json and its shards; tokenizer files are carried),\n"
       "or a .gguf file (F16/F32 llama). Tensors are written in the order the forward\n"
       "pass reads them, each layer one aligned range; output is atomic and the same\n"
       "bytes at any thread count.\n"
       "\n"
       "Default dtype policy: 2-D weights and the token embedding get --quant; the\n"
       "output head (or a tied embedding) stays f16; 1-D tensors keep their dtype; a\n"
       "row length that is not a multiple of the block size falls back to f16 (the\n"
       "summary says so).\n"
       "\n"
       "  --out, -o          output container path\n"
       "  --quant            q4_0 (default), q4_k, f16 or f32\n"
       "  --threads          worker threads (default: all cores)\n"
       "  --alignment        tensor alignment, a power of two 4096..2097152 (default 16384)\n"
       "  --keep-f16 PAT     keep tensors whose name matches the glob PAT in f16 (repeatable)\n"
       "  --allow-nonfinite  accept NaN/Inf (0 in quantized blocks) instead of failing\n"
       "  --json             JSON summary: sizes, bits per weight, per-tensor RMSE,\n"
       "                     max abs error and SNR, timings\n"
       "  --quiet            no progress bar and no summary\n"
       "  --force            overwrite an existing output (never the input)\n",
       {"out", "quant", "threads", "alignment", "keep_f16", "allow_nonfinite", "json", "quiet",
        "force"},
       {"keep_f16"}, 1, 1,
       [](const ParsedArgs& args) {
         ConvertCommandOptions options;
         options.source = args.positional[0];
         options.output = absl::GetFlag(FLAGS_out);
         options.quant = absl::GetFlag(FLAGS_quant);
         options.threads = absl::GetFlag(FLAGS_threads);
         options.alignment = absl::GetFlag(FLAGS_alignment);
         options.keep_f16 = absl::GetFlag(FLAGS_keep_f16);
         options.allow_nonfinite = absl::GetFlag(FLAGS_allow_nonfinite);
         options.json = absl::GetFlag(FLAGS_json);
         options.quiet = absl::GetFlag(FLAGS_quiet);
         options.force = absl::GetFlag(FLAGS_force);
         return RunConvert(options, std::cout);
       }},
      {"run",
       "run FILE --tokens 1,2,3 [-n N] [--threads N] [--seed S] [--temperature T] [--json]",
       "Open a container with the runtime (zero-copy) and generate tokens from a\n"
       "prompt of token ids. Prints the generated ids and the timings: open, first\n"
       "token (prompt evaluation plus the first sample) and decode tokens/s.\n"
       "\n"
       "  --tokens IDS        prompt token ids, comma-separated (required)\n"
       "  -n N                tokens to generate (default 16)\n"
       "  --threads N         compute threads (default: all cores)\n"
       "  --context N         KV cache positions (default: prompt + n)\n"
       "  --temperature T     0 (default) is greedy; > 0 samples\n"
       "  --top-k K, --top-p P, --seed S   sampling (defaults 40, 0.95, 1)\n"
       "  --stop-at-eos       stop at the model's end-of-sequence id\n"
       "  --advice A          madvise: none (default), sequential, random, willneed\n"
       "  --prefetch-layers N layers read ahead of compute (default 4; 0 off)\n"
       "  --populate          fault every page in at open\n"
       "  --mlock             lock the mapping in memory (needs RLIMIT_MEMLOCK)\n"
       "  --verify            verify every tensor checksum at open\n"
       "  --json              JSON report\n",
       {"tokens", "n", "threads", "context", "temperature", "top_k", "top_p", "seed",
        "stop_at_eos", "advice", "prefetch_layers", "populate", "mlock", "verify", "json"},
       {}, 1, 1,
       [](const ParsedArgs& args) {
         RunCommandOptions options;
         options.path = args.positional[0];
         options.tokens = absl::GetFlag(FLAGS_tokens);
         options.max_tokens = absl::GetFlag(FLAGS_n);
         options.threads = absl::GetFlag(FLAGS_threads);
         options.context = absl::GetFlag(FLAGS_context);
         options.temperature = absl::GetFlag(FLAGS_temperature);
         options.top_k = absl::GetFlag(FLAGS_top_k);
         options.top_p = absl::GetFlag(FLAGS_top_p);
         options.seed = absl::GetFlag(FLAGS_seed);
         options.stop_at_eos = absl::GetFlag(FLAGS_stop_at_eos);
         options.advice = absl::GetFlag(FLAGS_advice);
         options.prefetch_layers = absl::GetFlag(FLAGS_prefetch_layers);
         options.populate = absl::GetFlag(FLAGS_populate);
         options.mlock = absl::GetFlag(FLAGS_mlock);
         options.verify = absl::GetFlag(FLAGS_verify);
         options.json = absl::GetFlag(FLAGS_json);
         return RunRun(options, std::cout);
       }},
      {"synth",
       "synth --shape {tiny,stories15m,stories110m,llama-1b,llama-7b} --out DIR "
       "[--dtype f16|bf16|f32] [--seed N] [--threads N] [--force] [--json]",
       "Write a deterministic llama-shaped Hugging Face checkpoint (safetensors +\n"
       "config.json) in the shape of a real model, with weights from a realistic\n"
       "distribution. Large shapes are sharded with model.safetensors.index.json.\n"
       "Memory stays bounded at any size.\n"
       "\n"
       "  --shape     tiny (2 layers, 1.6M weights), stories15m, stories110m,\n"
       "              llama-1b (Llama 3.2 1B), llama-7b (Llama 2 7B)\n"
       "  --out, -o   output folder (created if missing)\n"
       "  --dtype     f16 (default), bf16 or f32\n"
       "  --seed      generator seed (default 1); same seed, same bytes\n"
       "  --threads   worker threads (default: all cores)\n"
       "  --force     replace existing model files in the folder\n"
       "  --json      print a JSON summary\n",
       {"shape", "out", "dtype", "seed", "threads", "force", "json"}, {}, 0, 0,
       [](const ParsedArgs& args) {
         SynthCommandOptions options;
         options.shape = absl::GetFlag(FLAGS_shape);
         options.out_dir = absl::GetFlag(FLAGS_out);
         options.dtype = absl::GetFlag(FLAGS_dtype);
         options.seed = absl::GetFlag(FLAGS_seed);
         options.threads = absl::GetFlag(FLAGS_threads);
         options.force = absl::GetFlag(FLAGS_force);
         options.json = absl::GetFlag(FLAGS_json);
         return RunSynth(options, std::cout);
       }},
  };
  return commands;
}

void PrintMainHelp(std::ostream& out) {
  out << "zcpack: convert LLM weights to a page-aligned Q4 container and load it zero-copy.\n\n"
         "Usage: zcpack COMMAND [ARGS] [FLAGS]\n\nCommands:\n";
  for (const Command& c : Commands()) out << "  " << c.synopsis << "\n";
  out << "\nRun 'zcpack COMMAND --help' for a command's flags. Flags accept\n"
         "--name=value or --name value; dashes and underscores are interchangeable.\n\n"
      << kExitCodesHelp;
}

void PrintCommandHelp(const Command& c, std::ostream& out) {
  out << "Usage: zcpack " << c.synopsis << "\n\n" << c.help << "\n" << kExitCodesHelp;
}

int Main(int argc, char** argv) {
  // A write past RLIMIT_FSIZE must fail with EFBIG (and be reported), not kill us.
  std::signal(SIGXFSZ, SIG_IGN);
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    PrintMainHelp(std::cerr);
    return kExitUsage;
  }
  if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    if (args.size() > 1) {
      for (const Command& c : Commands()) {
        if (args[1] == c.name) {
          PrintCommandHelp(c, std::cout);
          return kExitOk;
        }
      }
    }
    PrintMainHelp(std::cout);
    return kExitOk;
  }
  if (args[0] == "--version") {
    std::cout << "zcpack " << ZCPACK_VERSION << "\n";
    return kExitOk;
  }
  const Command* command = nullptr;
  for (const Command& c : Commands()) {
    if (args[0] == c.name) command = &c;
  }
  if (command == nullptr) {
    std::cerr << "zcpack: unknown command '" << args[0] << "'; run 'zcpack --help'\n";
    return kExitUsage;
  }
  auto parsed = ParseArgs(std::vector<std::string>(args.begin() + 1, args.end()), command->flags,
                          command->repeatable);
  if (!parsed.ok()) {
    std::cerr << "zcpack " << command->name << ": " << parsed.status().message()
              << "\nUsage: zcpack " << command->synopsis << "\n";
    return kExitUsage;
  }
  if (parsed->help) {
    PrintCommandHelp(*command, std::cout);
    return kExitOk;
  }
  const size_t n = parsed->positional.size();
  if (n < command->min_positional || n > command->max_positional) {
    std::cerr << "zcpack " << command->name << ": expected "
              << (command->min_positional == command->max_positional
                      ? absl::StrCat(command->min_positional)
                      : absl::StrCat(command->min_positional, " to ", command->max_positional))
              << " argument(s), got " << n << "\nUsage: zcpack " << command->synopsis << "\n";
    return kExitUsage;
  }
  const absl::Status status = command->run(*parsed);
  std::cout.flush();
  if (!status.ok()) {
    std::cerr << "zcpack " << command->name << ": " << status.message() << "\n";
  }
  return ExitCodeFor(status);
}

}  // namespace
}  // namespace zcpack::cli

int main(int argc, char** argv) { return zcpack::cli::Main(argc, argv); }

// zcpack: the command-line program. Flags are defined here and only here;
// each subcommand is a function in tools/cli/ that returns absl::Status, and
// main() turns a failure into one stderr line and a documented exit code
// (tools/cli/exit_codes.h).
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <cstdio>
#include <functional>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/str_cat.h"
#include "tools/cli/args.h"
#include "tools/cli/bench_system.h"
#include "tools/cli/commands.h"
#include "tools/cli/exit_codes.h"
#include "tools/cli/interrupt.h"
#include "tools/cli/json_output.h"
#include "tools/cli/manual.h"
#include "tools/cli/suggest.h"
#include "tools/cli/plan.h"
#include "tools/cli/terminal.h"
#include "tools/cli/units.h"
#include "zcpack/converter/plan.h"
#include "zcpack/converter/synth.h"
#include "zcpack/format/dtype.h"
#include "zcpack/format/row_groups.h"
#include "zcpack/format/threads.h"
#include "zcpack/status_macros.h"

ABSL_FLAG(bool, json, false, "Print a machine-readable JSON report instead of text.");
ABSL_FLAG(std::string, output, "text", "bench: report format (text, json, csv or jsonl).");
ABSL_FLAG(bool, targets, false, "bench: also check zcpack's own targets (docs/BENCHMARKS.md).");
ABSL_FLAG(bool, checksums, false, "inspect: also verify every tensor's checksum.");
ABSL_FLAG(std::string, out, "", "Output path (-o).");
ABSL_FLAG(std::string, shape, "tiny", "synth: model shape.");
ABSL_FLAG(std::string, dtype, "f16", "synth: weight dtype (f16, bf16, f32).");
ABSL_FLAG(uint64_t, seed, 1, "Random seed.");
ABSL_FLAG(int32_t, threads, 0, "Worker threads; 0 means one per hardware thread.");
ABSL_FLAG(bool, force, false, "Overwrite existing output.");
ABSL_FLAG(std::string, quant, "",
          "convert: target type (keep, q4_0, q4_k, q8_0, f16, f32); default keep for a "
          "quantized source, else q4_0.");
ABSL_FLAG(zcpack::cli::ByteCount, alignment, {16384}, "convert: tensor alignment in bytes.");
ABSL_FLAG(std::vector<std::string>, keep_f16, {}, "convert: tensor name patterns kept in f16.");
ABSL_FLAG(std::string, output_quant, "", "convert: dtype of the output head.");
ABSL_FLAG(bool, allow_nonfinite, false, "convert: accept NaN/Inf in source tensors.");
ABSL_FLAG(std::string, tokenizer, "",
          "convert: carry this file's tokenizer (GGUF, tokenizer.json, tokenizer.model).");
ABSL_FLAG(std::string, layout, "row-groups",
          "convert: block order of the matrices (row-groups or row-major).");
ABSL_FLAG(bool, quiet, false, "Every command: no progress, notes or summary; the result only.");
ABSL_FLAG(bool, verbose, false, "Every command: more detail where the command has any.");
ABSL_FLAG(std::string, to, "container", "convert: output kind (container or gguf).");
ABSL_FLAG(std::string, tokens, "", "run: comma-separated prompt token ids.");
ABSL_FLAG(std::string, prompt, "", "run: prompt text (tokenized by the container's tokenizer).");
ABSL_FLAG(std::string, chat, "", "run: a user message, rendered by the model's chat template.");
ABSL_FLAG(std::string, system, "", "run --chat: a system message before the user's.");
ABSL_FLAG(int32_t, n, 16, "run: tokens to generate.");
ABSL_FLAG(int32_t, context, 0, "run: KV cache positions (0: prompt + n); plan: a context length.");
ABSL_FLAG(float, temperature, 0.0f, "run: sampling temperature (0: greedy).");
ABSL_FLAG(int32_t, top_k, 40, "run: top-k sampling (0: off).");
ABSL_FLAG(float, top_p, 0.95f, "run: nucleus sampling threshold (1: off).");
ABSL_FLAG(bool, stop_at_eos, false, "run: stop at the model's end-of-sequence id.");
ABSL_FLAG(std::string, advice, "none", "run: madvise advice (none, sequential, random, willneed).");
ABSL_FLAG(int32_t, prefetch_layers, 4, "run: layers read ahead of compute (0: off).");
ABSL_FLAG(bool, populate, false, "run: fault every page in at open.");
ABSL_FLAG(bool, mlock, false, "run: lock the mapping in memory.");
ABSL_FLAG(std::string, memory_budget, "",
          "run, bench: memory budget in bytes (e.g. 2GiB): weights beyond it are streamed.");
ABSL_FLAG(bool, verify, false, "run: verify every checksum at open.");
ABSL_FLAG(std::string, level, "full", "verify: structure or full.");
ABSL_FLAG(bool, run, false, "verify: also generate a few tokens with the runtime.");
ABSL_FLAG(std::string, against, "", "verify: source checkpoint to compare with.");
ABSL_FLAG(double, max_rmse, zcpack::validator::kDefaultMaxRmse,
          "verify --against: largest RMSE allowed per tensor (inf: off).");
ABSL_FLAG(double, min_snr, zcpack::validator::kDefaultMinSnrDb,
          "verify --against: smallest SNR in dB allowed per tensor (-inf: off).");
ABSL_FLAG(uint64_t, max_tensors, zcpack::format::ReaderLimits{}.max_tensors,
          "verify: reader limit on the tensor count.");
ABSL_FLAG(uint32_t, max_rank, zcpack::format::ReaderLimits{}.max_rank,
          "verify: reader limit on a tensor's rank.");
ABSL_FLAG(zcpack::cli::ByteCount, max_name_bytes, {zcpack::format::ReaderLimits{}.max_name_bytes},
          "verify: reader limit on a tensor name's length.");
ABSL_FLAG(zcpack::cli::ByteCount, max_manifest_bytes,
          {zcpack::format::ReaderLimits{}.max_manifest_bytes},
          "verify: reader limit on the stored manifest size.");
ABSL_FLAG(zcpack::cli::ByteCount, max_manifest_raw_bytes,
          {zcpack::format::ReaderLimits{}.max_manifest_raw_bytes},
          "verify: reader limit on the decoded manifest size.");

ABSL_FLAG(std::string, loaders, "classic,pread,direct,mmap,zcpack",
          "bench: comma-separated loaders to compare.");
ABSL_FLAG(bool, cold, false, "bench: only the cold state (file evicted before each run).");
ABSL_FLAG(bool, warm, false, "bench: only the warm state (file in the page cache).");
ABSL_FLAG(bool, both, false, "bench: cold and warm (the default).");
ABSL_FLAG(int32_t, runs, 3, "bench: runs per row (median, min, max).");
ABSL_FLAG(std::string, budget, "auto", "bench: memory-budget row limit (auto, off, or bytes).");
ABSL_FLAG(std::string, timeline, "", "bench: write the RSS timeline CSV here.");
ABSL_FLAG(std::string, plot, "", "bench: render the RSS timeline chart (.svg or .png) here.");
ABSL_FLAG(std::string, loader, "zcpack", "run, bench-child: zcpack, mmap, classic, pread or direct.");
ABSL_FLAG(std::string, file, "", "tokenize: read the text from this file ('-': stdin).");
ABSL_FLAG(bool, bos, false, "tokenize: add BOS (and EOS) as the vocabulary says.");
ABSL_FLAG(bool, special, false, "tokenize: match special tokens written in the text.");
ABSL_FLAG(int32_t, batch, 0, "plan: tokens evaluated in one call (0: the whole context).");

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
  // Checks flag values and combinations that the flag parser cannot, before
  // any input is read or output written; InvalidArgument is a usage error
  // (exit code 2), any other failure is reported like the command's own.
  // Optional: a command whose flags need no check has none.
  std::function<absl::Status(const ParsedArgs&)> check_usage = nullptr;
  // Internal commands (bench-child) are not listed by --help.
  bool hidden = false;
};

BenchCommandOptions BenchOptionsFromFlags(const ParsedArgs& args) {
  BenchCommandOptions options;
  options.path = args.positional.empty() ? std::string() : args.positional[0];
  options.loaders = absl::GetFlag(FLAGS_loaders);
  options.cold = absl::GetFlag(FLAGS_cold);
  options.warm = absl::GetFlag(FLAGS_warm);
  options.both = absl::GetFlag(FLAGS_both);
  options.runs = absl::GetFlag(FLAGS_runs);
  options.tokens = absl::GetFlag(FLAGS_tokens);
  options.threads = absl::GetFlag(FLAGS_threads);
  options.budget = absl::GetFlag(FLAGS_budget);
  options.memory_budget = absl::GetFlag(FLAGS_memory_budget);
  options.budget_given = args.given.count("budget") > 0;
  options.timeline_csv = absl::GetFlag(FLAGS_timeline);
  options.plot = absl::GetFlag(FLAGS_plot);
  options.json = absl::GetFlag(FLAGS_json);
  options.quiet = absl::GetFlag(FLAGS_quiet);
  options.output = absl::GetFlag(FLAGS_output);
  options.targets = absl::GetFlag(FLAGS_targets);
  return options;
}

PlanCommandOptions PlanOptionsFromFlags(const ParsedArgs& args) {
  PlanCommandOptions options;
  options.path = args.positional.empty() ? std::string() : args.positional[0];
  if (auto it = args.repeated.find("context"); it != args.repeated.end()) options.contexts = it->second;
  // --budget's default ("auto") belongs to bench: no budget unless given.
  if (args.given.count("budget")) options.budget = absl::GetFlag(FLAGS_budget);
  options.batch = absl::GetFlag(FLAGS_batch);
  options.threads = absl::GetFlag(FLAGS_threads);
  options.json = absl::GetFlag(FLAGS_json);
  return options;
}

ConvertCommandOptions ConvertOptionsFromFlags(const ParsedArgs& args) {
  ConvertCommandOptions options;
  options.source = args.positional.empty() ? std::string() : args.positional[0];
  options.output = absl::GetFlag(FLAGS_out);
  options.quant = absl::GetFlag(FLAGS_quant);
  options.threads = absl::GetFlag(FLAGS_threads);
  options.alignment = absl::GetFlag(FLAGS_alignment).bytes;
  options.keep_f16 = absl::GetFlag(FLAGS_keep_f16);
  options.output_quant = absl::GetFlag(FLAGS_output_quant);
  options.allow_nonfinite = absl::GetFlag(FLAGS_allow_nonfinite);
  options.layout = absl::GetFlag(FLAGS_layout);
  options.tokenizer = absl::GetFlag(FLAGS_tokenizer);
  options.json = absl::GetFlag(FLAGS_json);
  options.quiet = absl::GetFlag(FLAGS_quiet);
  options.verbose = absl::GetFlag(FLAGS_verbose);
  options.force = absl::GetFlag(FLAGS_force);
  options.to = absl::GetFlag(FLAGS_to);
  return options;
}

ExportCommandOptions ExportOptionsFromFlags(const ParsedArgs& args) {
  ExportCommandOptions options;
  options.path = args.positional.empty() ? std::string() : args.positional[0];
  options.output = absl::GetFlag(FLAGS_out);
  // Unless asked for, the container's own alignment.
  options.alignment = args.given.count("alignment") ? absl::GetFlag(FLAGS_alignment).bytes : 0;
  options.json = absl::GetFlag(FLAGS_json);
  options.quiet = absl::GetFlag(FLAGS_quiet);
  options.verbose = absl::GetFlag(FLAGS_verbose);
  options.force = absl::GetFlag(FLAGS_force);
  return options;
}

SynthCommandOptions SynthOptionsFromFlags() {
  SynthCommandOptions options;
  options.shape = absl::GetFlag(FLAGS_shape);
  options.out_dir = absl::GetFlag(FLAGS_out);
  options.dtype = absl::GetFlag(FLAGS_dtype);
  options.seed = absl::GetFlag(FLAGS_seed);
  options.threads = absl::GetFlag(FLAGS_threads);
  options.force = absl::GetFlag(FLAGS_force);
  options.json = absl::GetFlag(FLAGS_json);
  options.quiet = absl::GetFlag(FLAGS_quiet);
  options.verbose = absl::GetFlag(FLAGS_verbose);
  return options;
}

TokenizeCommandOptions TokenizeOptionsFromFlags(const ParsedArgs& args) {
  TokenizeCommandOptions options;
  options.path = args.positional.empty() ? std::string() : args.positional[0];
  options.has_text = args.positional.size() > 1;
  options.text = options.has_text ? args.positional[1] : std::string();
  options.file = absl::GetFlag(FLAGS_file);
  options.bos = absl::GetFlag(FLAGS_bos);
  options.special = absl::GetFlag(FLAGS_special);
  options.json = absl::GetFlag(FLAGS_json);
  return options;
}

RunCommandOptions RunOptionsFromFlags(const ParsedArgs& args) {
  RunCommandOptions options;
  options.path = args.positional.empty() ? std::string() : args.positional[0];
  options.tokens = absl::GetFlag(FLAGS_tokens);
  options.prompt = absl::GetFlag(FLAGS_prompt);
  options.chat = absl::GetFlag(FLAGS_chat);
  options.system = absl::GetFlag(FLAGS_system);
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
  options.loader = absl::GetFlag(FLAGS_loader);
  options.memory_budget = absl::GetFlag(FLAGS_memory_budget);
  options.json = absl::GetFlag(FLAGS_json);
  options.quiet = absl::GetFlag(FLAGS_quiet);
  return options;
}

// The options of `zcpack verify` from its flags; InvalidArgument for values
// or combinations that make no sense.
absl::StatusOr<VerifyCommandOptions> VerifyOptionsFromFlags(const ParsedArgs& args) {
  VerifyCommandOptions options;
  options.path = args.positional.empty() ? std::string() : args.positional[0];
  options.json = absl::GetFlag(FLAGS_json);
  validator::VerifyOptions& v = options.verify;
  auto level = validator::ParseVerifyLevel(absl::GetFlag(FLAGS_level));
  if (!level.ok()) return absl::InvalidArgumentError(absl::StrCat("--level: ", level.status().message()));
  v.level = *level;
  v.against = absl::GetFlag(FLAGS_against);
  if (args.given.count("against") && v.against.empty()) {
    return absl::InvalidArgumentError("--against needs a source path");
  }
  if ((args.given.count("max_rmse") || args.given.count("min_snr")) && v.against.empty()) {
    return absl::InvalidArgumentError("--max-rmse and --min-snr apply only with --against SOURCE");
  }
  v.max_rmse = absl::GetFlag(FLAGS_max_rmse);
  v.min_snr_db = absl::GetFlag(FLAGS_min_snr);
  if (std::isnan(v.max_rmse) || v.max_rmse < 0) {
    return absl::InvalidArgumentError("--max-rmse must be a number >= 0 (inf turns it off)");
  }
  if (std::isnan(v.min_snr_db)) {
    return absl::InvalidArgumentError("--min-snr must be a number of dB (-inf turns it off)");
  }
  v.threads = absl::GetFlag(FLAGS_threads);
  if (absl::GetFlag(FLAGS_run)) v.run_tokens = 4;
  v.limits.max_tensors = absl::GetFlag(FLAGS_max_tensors);
  v.limits.max_rank = absl::GetFlag(FLAGS_max_rank);
  v.limits.max_name_bytes = absl::GetFlag(FLAGS_max_name_bytes).bytes;
  v.limits.max_manifest_bytes = absl::GetFlag(FLAGS_max_manifest_bytes).bytes;
  v.limits.max_manifest_raw_bytes = absl::GetFlag(FLAGS_max_manifest_raw_bytes).bytes;
  options.quiet = absl::GetFlag(FLAGS_quiet);
  options.verbose = absl::GetFlag(FLAGS_verbose);
  return options;
}

constexpr const char* kExitCodesHelp =
    "Exit codes:\n"
    "  0  success\n"
    "  1  the input is unsound: not a container, corrupt, unsupported, or a check failed\n"
    "  2  usage error (unknown flag, missing or bad value, wrong arguments; found\n"
    "     before any work), or a refusal (output exists without --force, output is\n"
    "     the input)\n"
    "  3  I/O, system or resource error (missing file, permission, full disk, limit,\n"
    "     out of memory, internal error)\n"
    "  130, 143, 129  interrupted by SIGINT (Ctrl-C), SIGTERM or SIGHUP; the output\n"
    "     being written is removed\n"
    "With --json a failure also prints a JSON error object on stdout (docs/JSON.md).\n";

const std::vector<Command>& Commands() {
  static const std::vector<Command> commands = {
      {"inspect", "inspect FILE [--json] [--checksums]",
       "Print a container's header, model info, per-tensor table (name, offset, bytes,\n"
       "dtype, shape, quantization error; at most 100 columns, a name too long for its\n"
       "column on a line of its own), layer ranges, layouts and totals (padding: every\n"
       "byte that is not header, tensor, tokenizer or manifest, as verify counts it).\n"
       "Reads only the header and the manifest unless --checksums is given.\n"
       "\n"
       "  --json        JSON report: alignment, model, tensors [{name, dtype, shape,\n"
       "                offset, bytes, layer, layout, xxh3, ...}], layers, totals\n"
       "                (every key: docs/JSON.md)\n"
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
       "convert SRC -o OUT [--quant keep|q4_0|q4_k|q8_0|f16|f32] [--threads N] [--alignment BYTES] "
       "[--output-quant TYPE] [--keep-f16 PATTERN]... [--allow-nonfinite] "
       "[--layout row-groups|row-major] [--tokenizer FILE] [--to container|gguf] [--json] [--force]",
       "Convert a checkpoint into a zcpack container. SRC is a .safetensors file, a\n"
       "Hugging Face model folder (config.json with model.safetensors, or\n"
       "model.safetensors.index.json and its shards; tokenizer files are carried),\n"
       "or a .gguf file (llama; F32/F16/BF16/Q4_0/Q4_1/Q5_0/Q5_1/Q8_0/Q4_K/Q5_K/Q6_K\n"
       "tensors). Tensors are written in the order the forward pass reads them, each\n"
       "layer one aligned range; output is atomic and the same bytes at any thread count.\n"
       "\n"
       "Default dtype policy: 2-D weights and the token embedding get --quant; with a\n"
       "quantized --quant (q4_0, q4_k, q8_0) the output head (or a tied embedding) is\n"
       "stored as q8_0 (--keep-f16 on its name keeps it f16); 1-D tensors keep their\n"
       "dtype; a row length that is not a multiple of the block size (32 for the q8_0\n"
       "head) falls back to f16 (the summary says so).\n"
       "A quantized GGUF source keeps every tensor's dtype and block bytes (--quant keep,\n"
       "its default). An explicit --quant on a quantized source requantizes: tensors\n"
       "of another type are decoded and quantized again (tensors already of the asked\n"
       "type keep their bytes), with one warning on stderr giving the largest error\n"
       "added to the source's. A GGUF tensor type zcpack cannot run yet\n"
       "(Q2_K, Q3_K, IQ types, ...) is refused, all such tensors named.\n"
       "\n"
       "  --out, -o          output container path\n"
       "  --quant            keep (default for a quantized source), q4_0 (default\n"
       "                     otherwise), q4_k, q8_0, f16 or f32 (llama.cpp's mixes such\n"
       "                     as q4_k_m are refused with the nearest of these)\n"
       "  --threads          worker threads (default: all cores)\n"
       "  --alignment        tensor alignment in bytes, a power of two from 4K to 2M\n"
       "                     (4096..2097152; default 16K)\n"
       "  --output-quant T   the output head's dtype with a quantized --quant (default q8_0;\n"
       "                     q4_0 with --quant q4_0 is llama-quantize's --pure)\n"
       "  --keep-f16 PAT     keep tensors whose name matches the glob PAT in f16 (repeatable)\n"
       "  --allow-nonfinite  accept NaN/Inf (0 in quantized blocks) instead of failing\n"
       "  --layout L         block order of the quantized matrices the runtime multiplies\n"
       "                     by: row-groups (default; 16 rows interleaved, the order the\n"
       "                     kernels read, recorded per tensor so that verify and\n"
       "                     exports still see ggml's order) or row-major (ggml's order)\n"
       "  --tokenizer FILE   carry FILE's tokenizer instead of the source's: a GGUF file\n"
       "                     (its tokenizer.* metadata; a vocabulary-only one will do),\n"
       "                     a tokenizer.json or a tokenizer.model\n"
       "  --to gguf          write a GGUF file instead of a container, from a GGUF\n"
       "                     source: its tensors and keys unchanged, each tensor at a\n"
       "                     multiple of --alignment (general.alignment), in forward-pass\n"
       "                     order, for llama.cpp, Ollama or LM Studio (takes no option\n"
       "                     that changes a tensor)\n"
       "  --json             JSON summary: sizes, bits per weight, per-tensor RMSE,\n"
       "                     max abs error and SNR, timings\n"
       "  --force            overwrite an existing output (never the input)\n",
       {"out", "quant", "output_quant", "threads", "alignment", "keep_f16", "allow_nonfinite",
        "layout", "tokenizer", "to", "json", "force"},
       {"keep_f16"}, 1, 1,
       [](const ParsedArgs& args) { return RunConvert(ConvertOptionsFromFlags(args), std::cout); },
       [](const ParsedArgs& args) { return CheckConvertOptions(ConvertOptionsFromFlags(args)); }},
      {"export", "export FILE -o OUT.gguf [--alignment BYTES] [--json] [--force]",
       "Write a container as a GGUF v3 file that llama.cpp, Ollama and LM Studio load\n"
       "unchanged, keeping zcpack's layout: every tensor at a multiple of the alignment\n"
       "(general.alignment), in the container's forward-pass order, each layer one\n"
       "contiguous range. Each block is byte-identical to the container's, in ggml's\n"
       "row-major order; Q/K rows of a Hugging Face checkpoint are permuted into\n"
       "llama.cpp's RoPE layout and 1-D f16/bf16 tensors widened to f32, both\n"
       "lossless. Metadata: the llama.* hyperparameters, the tokenizer (the source\n"
       "GGUF's tokenizer.* keys, or built from tokenizer.json / tokenizer.model;\n"
       "tokenizer.ggml.model none when the container has none), and the container's\n"
       "provenance (zcpack.source.*), which a later convert records when the tensor\n"
       "data is unchanged. Every tensor's checksum is checked on the way; the output\n"
       "is atomic and deterministic. Architectures: llama, mistral.\n"
       "\n"
       "  --out, -o          output GGUF path\n"
       "  --alignment BYTES  a power of two from 32 to 2M (2097152; default: the\n"
       "                     container's alignment)\n"
       "  --json             JSON summary: every tensor's name, type, offset, size\n"
       "  --force            overwrite an existing output (never the input)\n",
       {"out", "alignment", "json", "force"}, {}, 1, 1,
       [](const ParsedArgs& args) { return RunExport(ExportOptionsFromFlags(args), std::cout); },
       [](const ParsedArgs& args) { return CheckExportOptions(ExportOptionsFromFlags(args)); }},
      {"verify",
       "verify FILE [--level structure|full] [--against SOURCE [--max-rmse X] [--min-snr DB]] "
       "[--run] [--threads N] [--json]",
       "Check a container and report every problem found (the first 100 are listed,\n"
       "all are counted), each with its check, its tensor and the file offset. Meant\n"
       "as the gate before a model ships and as the first step when one misbehaves.\n"
       "\n"
       "Levels:\n"
       "  structure  header, manifest and tensor table (bounds, alignment, order, dtype,\n"
       "             shape and size, block layout, layer ranges) and the model: every\n"
       "             tensor a layer needs, with its shape, in forward-pass order. Reads\n"
       "             no tensor data: milliseconds at any model size.\n"
       "  full       (default) structure, plus every tensor's XXH3-64 checksum and the\n"
       "             zero fill of all padding (no checksum covers padding), on all\n"
       "             cores, streaming through the file with bounded memory.\n"
       "\n"
       "  --level LEVEL      structure or full (default full)\n"
       "  --against SOURCE   also compare with the source checkpoint (safetensors file\n"
       "                     or folder, or GGUF): the same hyperparameters, tensor names\n"
       "                     and shapes; tensors stored unconverted equal byte for byte;\n"
       "                     each converted tensor within the thresholds below and with\n"
       "                     the error statistics recorded when it was converted\n"
       "  --max-rmse X       with --against: largest RMSE per tensor (default 0.1;\n"
       "                     inf turns it off)\n"
       "  --min-snr DB       with --against: smallest SNR per tensor in dB (default 10;\n"
       "                     q4_0 of synthetic llama weights gives 17-19 dB, q4_k\n"
       "                     20-22 dB, q8_0 41-43 dB, unrelated weights about -3 dB;\n"
       "                     -inf turns it off)\n"
       "  --run              also open it with the runtime and generate 4 tokens\n"
       "                     greedily, every logit finite (check smoke_run)\n"
       "  --threads N        checksum and comparison threads (default: all cores)\n"
       "  --json             JSON report: every check {name, group, result, problems,\n"
       "                     detail}, every problem {check, tensor, offset, detail},\n"
       "                     sizes, timings and, with --against, per-tensor errors\n"
       "  --max-tensors N, --max-rank N, --max-name-bytes N, --max-manifest-bytes N,\n"
       "  --max-manifest-raw-bytes N\n"
       "                     reader limits (defaults: the format reader's; the byte\n"
       "                     limits take sizes such as 64K or 16M); a container over\n"
       "                     a limit is reported as a problem\n"
       "\n"
       "For verify: 0 means every check that ran passed; 1 means problems were found\n"
       "(the report on stdout lists them, one line on stderr names the first); 2 is a\n"
       "usage error; 3 means the container or the source could not be read.\n",
       {"level", "against", "max_rmse", "min_snr", "run", "threads", "json", "max_tensors", "max_rank",
        "max_name_bytes", "max_manifest_bytes", "max_manifest_raw_bytes"},
       {}, 1, 1,
       [](const ParsedArgs& args) {
         ZCPACK_ASSIGN_OR_RETURN(const VerifyCommandOptions options, VerifyOptionsFromFlags(args));
         return RunVerify(options, std::cout);
       },
       [](const ParsedArgs& args) { return VerifyOptionsFromFlags(args).status(); }},
      {"run",
       "run FILE {--tokens 1,2,3 | --prompt TEXT | --chat MESSAGE [--system TEXT]} [-n N] "
       "[--threads N] [--seed S] [--temperature T] [--json]",
       "Open a container with the runtime (zero-copy) and generate from a prompt.\n"
       "From token ids (--tokens): prints the generated ids and the timings: open,\n"
       "first token (prompt evaluation plus the first sample) and decode tokens/s.\n"
       "From text (--prompt, --chat): tokenizes it with the tokenizer the container\n"
       "carries, streams the prompt and then the generated text to stdout as it is\n"
       "generated, stops at the model's end-of-generation token (EOS, EOT, ...) or\n"
       "after N tokens, and prints why it stopped and the timings to stderr. Random\n"
       "weights (zcpack synth) give meaningless text.\n"
       "\n"
       "  --tokens IDS        prompt token ids, comma-separated\n"
       "  --prompt TEXT       prompt text (BOS added as the vocabulary says)\n"
       "  --chat MESSAGE      a user message, rendered by the model's chat template\n"
       "                      (tokenizer.chat_template: llama-3, ChatML/qwen2 or\n"
       "                      llama-2; others are refused); prints only the reply\n"
       "  --system TEXT       with --chat: a system message before it\n"
       "                      (give exactly one of --tokens, --prompt and --chat)\n"
       "  -n N                tokens to generate, at least 1 (default 16); past the\n"
       "                      model's trained context (max_position_embeddings) the\n"
       "                      run goes on with one warning\n"
       "  --threads N         compute threads (default: all cores; at most the CPUs\n"
       "                      available, with a note when more are asked for)\n"
       "  --context N         KV cache positions (default: prompt + n)\n"
       "  --temperature T     0 (default) is greedy; > 0 samples (a finite number)\n"
       "  --top-k K           sampling: the K likeliest tokens (default 40; 0 off)\n"
       "  --top-p P           sampling: nucleus threshold, 0 to 1 (default 0.95; 1 off)\n"
       "  --seed S            sampling seed (default 1)\n"
       "  --stop-at-eos       --tokens: stop at the model's end-of-sequence id (text\n"
       "                      always stops at end-of-generation)\n"
       "  --advice A          madvise: none (default), sequential, random, willneed\n"
       "  --prefetch-layers N\n"
       "                      layers read ahead of compute, N >= 0 (default 4; 0 off)\n"
       "  --populate          fault every page in at open\n"
       "  --mlock             lock the mapping in memory (needs RLIMIT_MEMLOCK)\n"
       "  --memory-budget B   run within B bytes (e.g. 2GiB, 600M) in all: anonymous\n"
       "                      memory, a ring of streamed weights and the weights kept\n"
       "                      resident (locked); the rest of the weights is read again\n"
       "                      for every token, ahead of compute (O_DIRECT where the file\n"
       "                      system allows). A budget that holds the whole file besides\n"
       "                      changes nothing. zcpack loader only\n"
       "  --verify            verify every tensor checksum at open\n"
       "  --loader L          zcpack (default, zero-copy); for comparison: mmap (no\n"
       "                      hints), classic (read file, copy tensors), pread, direct\n"
       "  --json              JSON report: prompt and generated ids, stop reason,\n"
       "                      sampling settings, context, timings, warnings (from\n"
       "                      text: also the prompt text and the generated text)\n"
       "\n"
       "A KV cache larger than the memory available is a resource error (exit 3),\n"
       "and so is a --memory-budget too small for the anonymous memory and the\n"
       "smallest ring (the message gives the figures),\n"
       "and so is a container truncated or unreadable while it is mapped. --prompt\n"
       "or --chat for a container without a tokenizer is a usage error (exit 2); a\n"
       "tokenizer that does not decode, or a chat template that is missing or not\n"
       "recognised, is exit 1, and so is a GGUF or safetensors file or a model folder\n"
       "(convert it first; the message gives the command).\n",
       {"tokens", "prompt", "chat", "system", "n", "threads", "context", "temperature", "top_k",
        "top_p", "seed", "stop_at_eos", "advice", "prefetch_layers", "populate", "mlock",
        "memory_budget", "verify", "loader", "json"},
       {}, 1, 1,
       [](const ParsedArgs& args) {
         return RunRun(RunOptionsFromFlags(args), std::cout, std::cerr);
       },
       [](const ParsedArgs& args) { return CheckRunOptions(RunOptionsFromFlags(args)); }},
      {"tokenize", "tokenize FILE (TEXT | - | --file PATH) [--bos] [--special] [--json]",
       "Tokenize text with the tokenizer of a container (its GGUF tokenizer metadata)\n"
       "or of a GGUF file (a vocabulary-only ggml-vocab-*.gguf works too), exactly as\n"
       "llama.cpp's llama_tokenize() does, and print the token ids space-separated\n"
       "on one line.\n"
       "\n"
       "  TEXT            the text; '-' reads it from stdin\n"
       "  --file PATH     read the text from a file instead ('-': stdin)\n"
       "  --bos           add BOS (and EOS) where the vocabulary says to (llama.cpp's\n"
       "                  add_special); default: none\n"
       "  --special       match special tokens written in the text (<|eot_id|>, </s>,\n"
       "                  ...; llama.cpp's parse_special); default: they are text\n"
       "                  (user-defined tokens are matched either way, as in llama.cpp)\n"
       "  --json          JSON report: {ids, token_count, text_bytes, tokenizer\n"
       "                  {source, model, pre, vocab_size}, bos, special}\n"
       "\n"
       "For tokenize: 1 means the file has no tokenizer, one zcpack cannot read, or\n"
       "malformed tokenizer metadata; 3 that a file could not be read.\n",
       {"file", "bos", "special", "json"}, {}, 1, 2,
       [](const ParsedArgs& args) { return RunTokenize(TokenizeOptionsFromFlags(args), std::cout); },
       [](const ParsedArgs& args) { return CheckTokenizeOptions(TokenizeOptionsFromFlags(args)); }},
      {"bench",
       "bench FILE [--loaders LIST] [--cold|--warm|--both] [--runs N] [--tokens N] "
       "[--budget BYTES] [--timeline OUT.csv] [--plot OUT.svg] [--threads N] "
       "[--output text|json|csv|jsonl] [--json] [--targets]",
       "Compare loaders on one container: time until the model is usable, time to\n"
       "first token, tokens/s, peak anonymous and total RSS, page faults; warm and\n"
       "cold; medians with min and max. Every run is a fresh child process that\n"
       "opens the model, evaluates a fixed 10-token prompt and generates tokens\n"
       "greedily; this process samples the child's /proc/PID/status every 1 ms\n"
       "(anonymous peaks come only from that sampling) and takes faults from wait4().\n"
       "\n"
       "Loaders: classic (read the file into one buffer, copy each tensor out: 2x\n"
       "peak), pread (each tensor into its own buffer), direct (O_DIRECT into aligned\n"
       "buffers), mmap (mapped, no hints; alias mmap-naive), zcpack (the runtime's\n"
       "default memory policy). All must give the same first-token logits.\n"
       "\n"
       "Warm: the file is read before each run. Cold: fsync + posix_fadvise(DONTNEED)\n"
       "before each run, residency checked with mincore and reported, and the file's\n"
       "cold sequential read time measured (the physical limit). Budget row: classic\n"
       "and zcpack, cold, each run in a fresh memory cgroup (v1 memory.limit_in_bytes\n"
       "and memsw, or v2 memory.max; needs root), skipped with a note where cgroups\n"
       "are not writable. A copying loader that cannot fit in the available memory\n"
       "is never run outside a cgroup.\n"
       "\n"
       "  --loaders LIST    comma-separated (default classic,pread,direct,mmap,zcpack)\n"
       "  --cold            only the cold state\n"
       "  --warm            only the warm state\n"
       "  --both            both states (the default)\n"
       "  --runs N          runs per row (default 3)\n"
       "  --tokens N        tokens generated per run (default 16)\n"
       "  --threads N       compute threads in each run (default: all cores)\n"
       "  --budget BYTES    memory-budget row limit: auto (default: 0.6 x the file),\n"
       "                    off, or a size such as 20GiB\n"
       "  --memory-budget BYTES  the budget row at BYTES, with a third run in it:\n"
       "                    zcpack streaming under that budget (run --memory-budget);\n"
       "                    reports its bytes streamed per token and tokens/s next to\n"
       "                    the bound cold read bandwidth / bytes streamed per token\n"
       "  --timeline CSV    write every RSS sample of each row's first run\n"
       "  --plot OUT.svg    chart that timeline with gnuplot (.svg or .png; the cold\n"
       "                    runs when measured, else the warm ones)\n"
       "  --output FORMAT   text (default: tables, prose wrapped at the terminal's\n"
       "                    width), json (the report with every run), csv (a header,\n"
       "                    then one line per row: median, min and max of each\n"
       "                    figure) or jsonl (one JSON object per row), as\n"
       "                    llama-bench's -o\n"
       "  --json            the same as --output json\n"
       "  --targets         also check zcpack's own performance targets\n"
       "                    (docs/BENCHMARKS.md) and list each as met or MISSED\n"
       "\n"
       "For bench: 1 means the loaders disagreed on the first-token logits; 3 that a\n"
       "run outside the budget row failed (the report is printed in both cases).\n",
       {"loaders", "cold", "warm", "both", "runs", "tokens", "threads", "budget", "memory_budget",
        "timeline", "plot", "json", "output", "targets"},
       {}, 1, 1,
       [](const ParsedArgs& args) { return RunBench(BenchOptionsFromFlags(args), std::cout); },
       [](const ParsedArgs& args) { return CheckBenchOptions(BenchOptionsFromFlags(args)); }},
      {"plan",
       "plan FILE [--context N]... [--budget BYTES] [--batch N] [--threads N] [--json]",
       "Plan the memory a container needs before running it, from the sizes the\n"
       "runtime allocates with: for each context length, the weights (file-backed for\n"
       "the mapped loaders: shared and reclaimable; copies for the others), the bytes\n"
       "one decoded token reads, the session's anonymous memory with its KV cache full\n"
       "(f16 KV cache, RoPE tables, logits, the batch's activations, attention and\n"
       "kernel buffers of every thread; worker stacks are reserved address space), the\n"
       "classic loader's peak (whole-file buffer plus copies), and whether each loader\n"
       "fits MemAvailable or the budget: yes, streams (a mapped loader runs, reading\n"
       "weights again from disk) or no. Then the largest parameter count, at this\n"
       "container's bits per weight, whose weights stay resident in devices of 8, 16,\n"
       "24, 64 and 128 GiB with each loader. Peaks include this program's own memory,\n"
       "measured after opening the container. Reads no weight.\n"
       "\n"
       "  --context N     a context length in positions (repeatable; default: 512,\n"
       "                  2048, 8192 below the model's maximum, and the maximum)\n"
       "  --budget BYTES  the limit instead of MemAvailable: bytes, or K/M/G/T\n"
       "                  (KiB/MiB/GiB/TiB) such as 6GiB\n"
       "  --batch N       tokens evaluated in one call, as a prompt is (default 0: the\n"
       "                  whole context; zcpack bench evaluates 10)\n"
       "  --threads N     compute threads (default: all cores, capped at the CPUs)\n"
       "  --json          JSON report; sizes in bytes (keys ending _bytes)\n",
       {"context", "budget", "batch", "threads", "json"}, {"context"}, 1, 1,
       [](const ParsedArgs& args) { return RunPlan(PlanOptionsFromFlags(args), std::cout); },
       [](const ParsedArgs& args) { return CheckPlanOptions(PlanOptionsFromFlags(args)); }},
      {"bench-child", "bench-child FILE --loader NAME [-n N] [--threads N] [--memory-budget B]",
       "Internal: one measured run of 'zcpack bench'; prints one JSON line.\n",
       {"loader", "n", "threads", "memory_budget"}, {}, 1, 1,
       [](const ParsedArgs& args) {
         BenchChildOptions options;
         options.path = args.positional[0];
         options.loader = absl::GetFlag(FLAGS_loader);
         options.tokens = absl::GetFlag(FLAGS_n);
         options.threads = absl::GetFlag(FLAGS_threads);
         ZCPACK_ASSIGN_OR_RETURN(options.memory_budget,
                                 bench::ParseMemoryBudget(absl::GetFlag(FLAGS_memory_budget)));
         return RunBenchChild(options, std::cout);
       },
       nullptr, /*hidden=*/true},
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
       [](const ParsedArgs&) { return RunSynth(SynthOptionsFromFlags(), std::cout); },
       [](const ParsedArgs&) { return CheckSynthOptions(SynthOptionsFromFlags()); }},
  };
  return commands;
}

// CheckThreadsFlag(): a usage error for a --threads outside 0 (one per CPU)
// to format::kMaxRequestedThreads. Every command that takes --threads runs it;
// within the range, more threads than CPUs are capped (format::ThreadsFor()).
absl::Status CheckThreadsFlag(const ParsedArgs& args) {
  if (!args.given.count("threads")) return absl::OkStatus();
  const int32_t threads = absl::GetFlag(FLAGS_threads);
  if (threads >= 0 && threads <= format::kMaxRequestedThreads) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("--threads ", threads, " is out of range: give 1 to ",
                   format::kMaxRequestedThreads, ", or 0 for one per CPU (more than the ",
                   format::AvailableCpus(), " CPUs available are capped at that)"));
}

// Flags every command takes, besides --help.
const std::set<std::string>& CommonFlags() {
  static const std::set<std::string> flags = {"quiet", "verbose"};
  return flags;
}

constexpr const char* kCommonFlagsHelp =
    "Flags of every command:\n"
    "  -q, --quiet    no progress line and no notes; convert, export and synth\n"
    "                 print no summary, verify no report unless a check fails\n"
    "                 (errors, warnings and --json reports are still printed)\n"
    "  -v, --verbose  more detail: convert and export print a line per tensor,\n"
    "                 verify a line per check, synth each file's size (the\n"
    "                 other commands have no more to say)\n"
    "  -h, --help     this help\n";

constexpr const char* kGlobalFlagsHelp =
    "  -h, --help     this help ('zcpack COMMAND --help': a command's own)\n"
    "  -V, --version  print the version\n";

constexpr const char* kDescription =
    "convert LLM weights to a page-aligned Q4 container and load it zero-copy";

// The flags `c` accepts: its own and the common ones.
std::set<std::string> FlagsOf(const Command& c) {
  std::set<std::string> flags = c.flags;
  flags.insert(CommonFlags().begin(), CommonFlags().end());
  return flags;
}

// Writes help text to `out`; on a terminal (file descriptor `fd`), lines
// wider than it are wrapped to its width.
void PrintProse(std::ostream& out, int fd, const std::string& text) {
  out << FitToTerminal(text, fd);
}

std::string MainHelp() {
  std::string text = absl::StrCat("zcpack: ", kDescription,
                                  ".\n\nUsage: zcpack COMMAND [ARGS] [FLAGS]\n\nCommands:\n");
  for (const Command& c : Commands()) {
    if (!c.hidden) absl::StrAppend(&text, "  ", c.synopsis, "\n");
  }
  absl::StrAppend(&text, "\nFlags:\n", kGlobalFlagsHelp,
                  "\nRun 'zcpack COMMAND --help' for a command's flags; every command also\n"
                  "takes -q/--quiet and -v/--verbose. Flags accept --name=value or\n"
                  "--name value; dashes and underscores are interchangeable. Byte counts\n"
                  "take K, M, G and T suffixes (16K, 2MiB).\n\n",
                  kExitCodesHelp);
  return text;
}

void PrintMainHelp(std::ostream& out, int fd) { PrintProse(out, fd, MainHelp()); }

// A command's help under its usage line: its own text, then the flags every
// command takes.
std::string CommandHelpBody(const Command& c) {
  return absl::StrCat(c.help, "\n", kCommonFlagsHelp);
}

void PrintCommandHelp(const Command& c, std::ostream& out, int fd) {
  PrintProse(out, fd,
             absl::StrCat("Usage: zcpack ", c.synopsis, "\n\n", CommandHelpBody(c), "\n",
                          kExitCodesHelp));
}

// A usage error: the message and the command's usage line, on stderr.
void PrintUsageError(const Command& c, absl::string_view message) {
  PrintProse(std::cerr, STDERR_FILENO,
             absl::StrCat("zcpack ", c.name, ": ", message, "\nUsage: zcpack ", c.synopsis, "\n"));
}

// The values a flag takes, for the completions, where the program keeps
// them in a table; empty for any other flag.
std::vector<std::string> FlagChoices(const std::string& name) {
  std::vector<std::string> choices;
  if (name == "shape") {
    for (const converter::SynthShape& s : converter::SynthShapes()) choices.push_back(s.name);
  } else if (name == "quant" || name == "output_quant") {
    if (name == "quant") choices.push_back("keep");
    for (const format::DType d : converter::kConversionTargets) {
      choices.emplace_back(format::DTypeName(d));
    }
  } else if (name == "level") {
    for (const auto level : {validator::VerifyLevel::kStructure, validator::VerifyLevel::kFull}) {
      choices.emplace_back(validator::VerifyLevelName(level));
    }
  } else if (name == "layout") {
    for (const auto layout : {format::LAYOUT_ROW_GROUPS_16, format::LAYOUT_ROW_MAJOR}) {
      choices.emplace_back(format::LayoutName(layout));
    }
  }
  return choices;
}

// The command table as the man page and the completions render it.
std::vector<CommandDoc> CommandDocs() {
  std::vector<CommandDoc> docs;
  for (const Command& c : Commands()) {
    if (c.hidden) continue;
    CommandDoc doc{c.name, c.synopsis, CommandHelpBody(c), {}};
    for (const std::string& name : FlagsOf(c)) {
      const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
      doc.flags.push_back({name, ShortFlagName(name), flag != nullptr && !flag->IsOfType<bool>(),
                           c.repeatable.count(name) > 0, FlagChoices(name)});
    }
    docs.push_back(std::move(doc));
  }
  return docs;
}

// JsonRequested(): whether a failure is reported as a JSON object too:
// --json, or bench's --output json|jsonl. From the parsed flags, or, when
// parsing failed, from the words on the line (before any "--").
bool JsonRequested(const Command& c, const ParsedArgs* parsed, const std::vector<std::string>& args) {
  if (parsed != nullptr) {
    const std::string output = absl::GetFlag(FLAGS_output);
    return (c.flags.count("json") && absl::GetFlag(FLAGS_json)) ||
           (c.flags.count("output") && (output == "json" || output == "jsonl"));
  }
  for (size_t i = 0; i < args.size() && args[i] != "--"; ++i) {
    if (c.flags.count("json") && (args[i] == "--json" || args[i] == "--json=true")) return true;
    if (!c.flags.count("output")) continue;
    if (args[i] == "--output=json" || args[i] == "--output=jsonl") return true;
    if (args[i] == "--output" && i + 1 < args.size() &&
        (args[i + 1] == "json" || args[i + 1] == "jsonl")) {
      return true;
    }
  }
  return false;
}

// Fail(): how Main() ends a command that failed: one stderr line (and the
// usage line for a usage error) and, when JSON was asked for, the error
// object on stdout (docs/JSON.md, "Errors") unless the command's own report
// already carries it. Returns the exit code.
int Fail(const Command& c, const absl::Status& status, int exit_code, bool json,
         const std::string& input) {
  if (exit_code == kExitUsage && status.code() == absl::StatusCode::kInvalidArgument) {
    PrintUsageError(c, status.message());
  } else {
    std::cerr << "zcpack " << c.name << ": " << status.message() << "\n";
  }
  if (json && !Reported(status)) {
    const bool one_line = absl::GetFlag(FLAGS_output) == "jsonl";
    std::cout << ErrorReportText(c.name, status, exit_code, input, one_line ? -1 : 2) << "\n";
  }
  return exit_code;
}

int Main(int argc, char** argv) {
  // A write past RLIMIT_FSIZE must fail with EFBIG (and be reported), not kill us.
  std::signal(SIGXFSZ, SIG_IGN);
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    PrintMainHelp(std::cerr, STDERR_FILENO);
    return kExitUsage;
  }
  if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    if (args.size() > 1) {
      for (const Command& c : Commands()) {
        if (args[1] == c.name) {
          PrintCommandHelp(c, std::cout, STDOUT_FILENO);
          return kExitOk;
        }
      }
    }
    PrintMainHelp(std::cout, STDOUT_FILENO);
    return kExitOk;
  }
  if (args[0] == "--version" || args[0] == "-V") {
    std::cout << "zcpack " << ZCPACK_VERSION << "\n";
    return kExitOk;
  }
  // Hidden: the build writes the man page and the shell completions with
  // these (tools/CMakeLists.txt).
  if (args[0] == "--help-man" && args.size() == 1) {
    std::cout << RenderManPage(CommandDocs(), ZCPACK_VERSION, kDescription, kGlobalFlagsHelp,
                               kExitCodesHelp);
    return kExitOk;
  }
  if (args[0] == "--completion" && args.size() == 2 && (args[1] == "bash" || args[1] == "zsh")) {
    const std::string global_flags = "--help -h --version -V";
    std::cout << (args[1] == "bash" ? RenderBashCompletion(CommandDocs(), global_flags)
                                    : RenderZshCompletion(CommandDocs(), global_flags));
    return kExitOk;
  }
  const Command* command = nullptr;
  for (const Command& c : Commands()) {
    if (args[0] == c.name) command = &c;
  }
  if (command == nullptr) {
    std::vector<std::string> names;
    for (const Command& c : Commands()) {
      if (!c.hidden) names.push_back(c.name);
    }
    std::cerr << "zcpack: unknown command '" << args[0] << "'" << DidYouMean(args[0], names)
              << "; run 'zcpack --help'\n";
    return kExitUsage;
  }
  const std::vector<std::string> command_args(args.begin() + 1, args.end());
  auto parsed = ParseArgs(command_args, FlagsOf(*command), command->repeatable);
  if (!parsed.ok()) {
    return Fail(*command, parsed.status(), kExitUsage,
                JsonRequested(*command, nullptr, command_args), "");
  }
  const bool json = JsonRequested(*command, &*parsed, command_args);
  const std::string input = parsed->positional.empty() ? "" : parsed->positional[0];
  if (parsed->help) {
    PrintCommandHelp(*command, std::cout, STDOUT_FILENO);
    return kExitOk;
  }
  const size_t n = parsed->positional.size();
  if (n < command->min_positional || n > command->max_positional) {
    const absl::Status usage = absl::InvalidArgumentError(absl::StrCat(
        "expected ",
        command->min_positional == command->max_positional
            ? absl::StrCat(command->min_positional)
            : absl::StrCat(command->min_positional, " to ", command->max_positional),
        " argument(s), got ", n));
    return Fail(*command, usage, kExitUsage, json, input);
  }
  if (command->flags.count("threads")) {
    if (const absl::Status usage = CheckThreadsFlag(*parsed); !usage.ok()) {
      return Fail(*command, usage, kExitUsage, json, input);
    }
  }
  // Before any thread starts: an interrupt removes what the command was
  // writing (tools/cli/interrupt.h).
  HandleInterrupts(command->name, json, input);
  if (command->check_usage) {
    const absl::Status usage = StatusOfCall([&] { return command->check_usage(*parsed); });
    if (usage.code() == absl::StatusCode::kInvalidArgument) {
      return Fail(*command, usage, kExitUsage, json, input);
    }
    if (!usage.ok()) return Fail(*command, usage, ExitCodeFor(usage), json, input);
  }
  const absl::Status status = StatusOfCall([&] { return command->run(*parsed); });
  std::cout.flush();
  if (!status.ok()) return Fail(*command, status, ExitCodeFor(status), json, input);
  return kExitOk;
}

}  // namespace
}  // namespace zcpack::cli

int main(int argc, char** argv) { return zcpack::cli::Main(argc, argv); }

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

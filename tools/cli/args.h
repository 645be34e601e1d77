// Subcommand-aware command-line parsing on top of Abseil flags.
//
// Flags are defined with ABSL_FLAG in the file that holds main(); this parser
// only splits argv and hands each value to absl's own parser
// (CommandLineFlag::ParseFrom), so value syntax and types are absl's. What it
// adds: each subcommand accepts only its own flags, both `--keep-f16` and
// `--keep_f16` spellings, `-o` as `--out`, repeatable list flags, and usage
// errors returned as a status (exit code 2) instead of exiting.
#ifndef ZCPACK_TOOLS_CLI_ARGS_H_
#define ZCPACK_TOOLS_CLI_ARGS_H_

#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace zcpack::cli {

struct ParsedArgs {
  std::vector<std::string> positional;
  std::set<std::string> given;  // flag names (underscore spelling) on the line
  bool help = false;
};

// ParseArgs(): parses `args` (argv after the subcommand name). `allowed` lists
// the absl flag names this subcommand takes; `repeatable` those whose
// occurrences accumulate into a comma-separated list. InvalidArgument for an
// unknown flag, a missing value or a value absl rejects.
absl::StatusOr<ParsedArgs> ParseArgs(const std::vector<std::string>& args,
                                     const std::set<std::string>& allowed,
                                     const std::set<std::string>& repeatable = {});

}  // namespace zcpack::cli

#endif  // ZCPACK_TOOLS_CLI_ARGS_H_

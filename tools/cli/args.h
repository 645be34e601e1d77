// Subcommand-aware command-line parsing on top of Abseil flags.
//
// Flags are defined with ABSL_FLAG in the file that holds main(); this parser
// only splits argv and hands each value to absl's own parser
// (CommandLineFlag::ParseFrom), so value syntax and types are absl's. What it
// adds: each subcommand accepts only its own flags, both `--keep-f16` and
// `--keep_f16` spellings, one-letter aliases (`-o` for `--out`, `-q` for
// `--quiet`, `-v` for `--verbose`), repeatable list flags, and usage
// errors returned as a status (exit code 2) instead of exiting.
#ifndef ZCPACK_TOOLS_CLI_ARGS_H_
#define ZCPACK_TOOLS_CLI_ARGS_H_

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace zcpack::cli {

struct ParsedArgs {
  std::vector<std::string> positional;
  std::set<std::string> given;  // flag names (underscore spelling) on the line
  // Every value a repeatable flag was given, in order. A list flag
  // (std::vector<std::string>) also holds them all; any other flag holds the
  // last, each one having been checked by absl's parser for its type.
  std::map<std::string, std::vector<std::string>> repeated;
  bool help = false;
};

// ShortFlagName(): the one-letter alias of flag `name` ("o" for "out"), or
// "" when it has none.
std::string ShortFlagName(const std::string& name);

// ParseArgs(): parses `args` (argv after the subcommand name). `allowed` lists
// the absl flag names this subcommand takes; `repeatable` those that may be
// given more than once: a list flag accumulates the values (comma-joined),
// any other flag parses each in turn and they are kept in `repeated`. InvalidArgument for an
// unknown flag, a missing value or a value absl rejects.
absl::StatusOr<ParsedArgs> ParseArgs(const std::vector<std::string>& args,
                                     const std::set<std::string>& allowed,
                                     const std::set<std::string>& repeatable = {});

}  // namespace zcpack::cli

#endif  // ZCPACK_TOOLS_CLI_ARGS_H_

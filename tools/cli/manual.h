// The man page and the bash and zsh completions of zcpack, rendered from the
// same command table that `zcpack --help` prints (zcpack_main.cc): each
// command's synopsis and help text, and the flags its parser accepts. The
// build runs `zcpack --help-man` and `zcpack --completion bash|zsh` to write
// the installed files (tools/CMakeLists.txt), so they cannot drift from
// --help.
#ifndef ZCPACK_TOOLS_CLI_MANUAL_H_
#define ZCPACK_TOOLS_CLI_MANUAL_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace zcpack::cli {

// A flag as the parser accepts it.
struct FlagDoc {
  std::string name;        // the absl name: "keep_f16"
  std::string short_name;  // "o" for --out; "" for none
  bool takes_value = false;
  bool repeatable = false;
  // The values it takes, where the program has them in a table (shapes,
  // target types, levels); empty: any value (completed as a file name).
  std::vector<std::string> choices;
};

// A command as --help shows it.
struct CommandDoc {
  std::string name;
  std::string synopsis;  // after "zcpack "
  std::string help;      // the text under the usage line, flags included
  std::vector<FlagDoc> flags;
};

// A flag entry of a help text: a line "  --name[, -x] VALUE   description"
// (two spaces, then a dash) and the more deeply indented lines that continue
// it.
struct HelpFlagEntry {
  std::string term;                    // "--out, -o", "--alignment BYTES"
  std::vector<std::string> spellings;  // "--out", "-o": every flag the term names
  std::string description;             // its lines joined by single spaces
  size_t first_line = 0;               // the lines of `help` it spans: [first, end)
  size_t end_line = 0;
};

// HelpFlagEntries(): the flag entries of `help`, in order.
std::vector<HelpFlagEntry> HelpFlagEntries(absl::string_view help);

// FlagSpelling(): "--keep-f16" for "keep_f16", "-n" for a one-letter name.
std::string FlagSpelling(absl::string_view name);

// RenderManPage(): zcpack(1) in roff (man(7) macros): NAME, SYNOPSIS,
// DESCRIPTION (`description`), one subsection per command with its
// synopsis, its prose and each flag entry as a tagged paragraph, then
// `trailer` (the exit codes) as EXIT STATUS.
std::string RenderManPage(const std::vector<CommandDoc>& commands, absl::string_view version,
                          absl::string_view description, absl::string_view global_flags,
                          absl::string_view trailer);

// RenderBashCompletion(): a bash script defining _zcpack and registering it
// with `complete`: command names in the first position (and `global_flags`,
// space-separated), then each command's flags; after a flag that takes a
// value, file names.
std::string RenderBashCompletion(const std::vector<CommandDoc>& commands,
                                 absl::string_view global_flags);

// RenderZshCompletion(): the same for zsh (#compdef zcpack, _arguments), with
// each command's first help line and each flag's description.
std::string RenderZshCompletion(const std::vector<CommandDoc>& commands,
                                absl::string_view global_flags);

}  // namespace zcpack::cli

#endif  // ZCPACK_TOOLS_CLI_MANUAL_H_

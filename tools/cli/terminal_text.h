// Prose for a person at a terminal: the width to wrap at, and wrapping.
// Tables and figures are not prose: callers print those as they are.
#ifndef ZCPACK_TOOLS_CLI_TERMINAL_TEXT_H_
#define ZCPACK_TOOLS_CLI_TERMINAL_TEXT_H_

#include <string>

#include "absl/strings/string_view.h"

namespace zcpack::cli {

// The narrowest and the widest width WrapText() is given by
// ProseColumns(): below 40 a line holds too few words to read; above 120
// prose is hard to follow back to the next line's start.
inline constexpr int kMinProseColumns = 40;
inline constexpr int kMaxProseColumns = 120;

// ProseColumns(): TerminalColumns(fd) (tools/cli/terminal.h: the window's
// width, else $COLUMNS, else 80) clamped to [kMinProseColumns,
// kMaxProseColumns].
int ProseColumns(int fd);

// WrapText(): `text` broken at spaces into lines of at most `width`
// columns (one column per UTF-8 character), the first line starting with
// `first`, the others with `rest` (a hanging indent); each line ends with a
// newline. A word longer than a line stays whole on its own line. Runs of
// spaces between words become one.
std::string WrapText(absl::string_view text, int width, absl::string_view first,
                     absl::string_view rest);

}  // namespace zcpack::cli

#endif  // ZCPACK_TOOLS_CLI_TERMINAL_TEXT_H_

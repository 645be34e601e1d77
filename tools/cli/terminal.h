// What the CLI needs to know about a terminal: whether a stream is one, how
// wide it is, and how to fit prose to that width.
#ifndef ZCPACK_TOOLS_CLI_TERMINAL_H_
#define ZCPACK_TOOLS_CLI_TERMINAL_H_

#include <string>

#include "absl/strings/string_view.h"

namespace zcpack::cli {

// The width assumed when a stream is no terminal and $COLUMNS says nothing.
inline constexpr int kDefaultColumns = 80;

// IsTerminal(): whether file descriptor `fd` is a terminal (isatty).
bool IsTerminal(int fd);

// TerminalColumns(): the width of the terminal on `fd` (TIOCGWINSZ), asked
// each time so that a resized window is followed; where `fd` is no terminal
// or reports no width, a positive $COLUMNS, else kDefaultColumns.
int TerminalColumns(int fd);

// WrapToWidth(): `text` fitted to `width` columns, keeping the shape of help:
// a block (a paragraph of prose at the margin, or an indented line such as
// "  --out, -o   output path" with the lines indented under its text) that
// has a line longer than `width` is filled again to the width, its
// continuations indented as before; blocks that fit are left as they are.
// A word longer than the room left is cut. Counts bytes as columns: the
// texts are ASCII. `width` below 20 is taken as 20.
std::string WrapToWidth(absl::string_view text, int width);

// FitToTerminal(): `text` wrapped to the width of the terminal on `fd`
// (WrapToWidth()), or unchanged when `fd` is no terminal: what a command
// prints for a person fits the window, what it prints for a program keeps
// one record per line.
std::string FitToTerminal(absl::string_view text, int fd);

}  // namespace zcpack::cli

#endif  // ZCPACK_TOOLS_CLI_TERMINAL_H_

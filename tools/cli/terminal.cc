#include "tools/cli/terminal.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace zcpack::cli {
namespace {

// Where a too-long line's continuations start: after the run of two or more
// spaces that ends a flag-list term ("  --out, -o   output path"), after
// "Usage: ", else at the line's indentation.
size_t HangingIndent(absl::string_view line, size_t width) {
  size_t indent = 0;
  while (indent < line.size() && line[indent] == ' ') ++indent;
  size_t hang = indent;
  if (line.substr(0, 7) == "Usage: ") {
    hang = 7;
  } else if (indent > 0) {
    const size_t gap = line.find("  ", indent);
    if (gap != absl::string_view::npos) {
      size_t text = gap;
      while (text < line.size() && line[text] == ' ') ++text;
      if (text < line.size()) hang = text;
    }
  }
  // Continuations need room for a few words.
  if (hang + 20 > width) hang = indent + 20 > width ? 0 : indent;
  return hang;
}

void WrapLine(absl::string_view line, size_t width, std::string* out) {
  const size_t hang = HangingIndent(line, width);
  size_t indent = 0;
  while (indent < line.size() && line[indent] == ' ') ++indent;
  std::string current(line);
  bool first = true;
  while (current.size() > width) {
    // The last space that leaves the piece within the width, past the
    // indentation so that a piece is never empty.
    const size_t floor = (first ? indent : hang) + 1;
    size_t cut = current.rfind(' ', width);
    while (cut != std::string::npos && cut > floor && current[cut - 1] == ' ') --cut;
    if (cut == std::string::npos || cut < floor) cut = width;
    out->append(current, 0, cut);
    out->push_back('\n');
    size_t next = cut;
    while (next < current.size() && current[next] == ' ') ++next;
    current = std::string(hang, ' ') + current.substr(next);
    first = false;
  }
  out->append(current);
}

}  // namespace

bool IsTerminal(int fd) { return ::isatty(fd) == 1; }

int TerminalColumns(int fd) {
  struct winsize size {};
  if (IsTerminal(fd) && ::ioctl(fd, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) {
    return size.ws_col;
  }
  int columns = 0;
  if (const char* env = std::getenv("COLUMNS");
      env != nullptr && absl::SimpleAtoi(env, &columns) && columns > 0) {
    return columns;
  }
  return kDefaultColumns;
}

std::string WrapToWidth(absl::string_view text, int width) {
  const size_t columns = static_cast<size_t>(std::max(width, 20));
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  bool first = true;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!first) out.push_back('\n');
    first = false;
    if (line.size() <= columns) {
      out.append(line.data(), line.size());
    } else {
      WrapLine(line, columns, &out);
    }
  }
  return out;
}

std::string FitToTerminal(absl::string_view text, int fd) {
  return IsTerminal(fd) ? WrapToWidth(text, TerminalColumns(fd)) : std::string(text);
}

}  // namespace zcpack::cli

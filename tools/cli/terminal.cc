#include "tools/cli/terminal.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace zcpack::cli {
namespace {

size_t Indentation(absl::string_view line) {
  size_t indent = 0;
  while (indent < line.size() && line[indent] == ' ') ++indent;
  return indent;
}

// Where the continuations of `line` start: after the run of two or more
// spaces that ends an indented term ("  --out, -o   output path"), after
// "Usage: ", else at the line's indentation.
size_t NaturalHang(absl::string_view line) {
  const size_t indent = Indentation(line);
  if (line.substr(0, 7) == "Usage: ") return 7;
  if (indent > 0) {
    const size_t gap = line.find("  ", indent);
    if (gap != absl::string_view::npos) {
      const size_t text = Indentation(line.substr(gap)) + gap;
      if (text < line.size()) return text;
    }
  }
  return indent;
}

// Breaks `line` at spaces into lines of at most `width`, continuations
// indented by `hang` (less where that leaves too little room).
void WrapLine(absl::string_view line, size_t width, size_t hang, std::string* out) {
  const size_t indent = Indentation(line);
  // Continuations need room for a few words.
  if (hang + 20 > width) hang = indent + 20 > width ? 0 : indent;
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
  const std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for (size_t i = 0; i < lines.size();) {
    if (i > 0) out.push_back('\n');
    const absl::string_view first = lines[i];
    const size_t indent = Indentation(first);
    const size_t hang = NaturalHang(first);
    // The lines that continue this one: more prose at the margin, or lines
    // indented to its hang (a flag's description).
    size_t end = i + 1;
    const bool prose = indent == 0 && first.substr(0, 7) != "Usage: " && !first.empty();
    while (end < lines.size() && !lines[end].empty() && Indentation(lines[end]) < lines[end].size()) {
      const size_t next_indent = Indentation(lines[end]);
      const bool continues = prose ? next_indent == 0 && lines[end].substr(0, 7) != "Usage: "
                                   : hang > indent && next_indent == hang;
      if (!continues) break;
      ++end;
    }
    bool fits = true;
    for (size_t k = i; k < end; ++k) fits = fits && lines[k].size() <= columns;
    if (fits) {
      for (size_t k = i; k < end; ++k) {
        if (k > i) out.push_back('\n');
        out.append(lines[k].data(), lines[k].size());
      }
    } else {
      // Reflow the block: its words, filled to the width.
      std::string joined(absl::StripTrailingAsciiWhitespace(first));
      for (size_t k = i + 1; k < end; ++k) {
        absl::StrAppend(&joined, " ", absl::StripAsciiWhitespace(lines[k]));
      }
      WrapLine(joined, columns, hang, &out);
    }
    i = end;
  }
  return out;
}

std::string FitToTerminal(absl::string_view text, int fd) {
  return IsTerminal(fd) ? WrapToWidth(text, TerminalColumns(fd)) : std::string(text);
}

}  // namespace zcpack::cli

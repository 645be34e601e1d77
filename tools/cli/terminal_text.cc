#include "tools/cli/terminal_text.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_split.h"
#include "tools/cli/terminal.h"

namespace zcpack::cli {
namespace {

// Columns `s` takes: its UTF-8 characters (continuation bytes take none).
size_t Columns(absl::string_view s) {
  return static_cast<size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

}  // namespace

int ProseColumns(int fd) {
  return std::clamp(TerminalColumns(fd), kMinProseColumns, kMaxProseColumns);
}

std::string WrapText(absl::string_view text, int width, absl::string_view first,
                     absl::string_view rest) {
  std::string out(first);
  size_t line = Columns(first);
  bool empty_line = true;  // no word on the current line yet
  for (absl::string_view word : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
    const size_t w = Columns(word);
    if (!empty_line && line + 1 + w > static_cast<size_t>(width)) {
      out += '\n';
      out.append(rest.data(), rest.size());
      line = Columns(rest);
      empty_line = true;
    }
    if (!empty_line) {
      out += ' ';
      ++line;
    }
    out.append(word.data(), word.size());
    line += w;
    empty_line = false;
  }
  out += '\n';
  return out;
}

}  // namespace zcpack::cli

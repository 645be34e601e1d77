#include "tools/cli/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "tools/cli/terminal.h"
#include "tools/cli/units.h"

namespace zcpack::cli {
namespace {

// Erase from the cursor to the end of the line (ECMA-48 EL 0).
constexpr const char* kEraseToEnd = "\x1b[K";

constexpr size_t kMinBar = 12;  // "[" + 10 + "]"
constexpr size_t kMaxBar = 42;

std::string Bar(double fraction, size_t width) {
  const size_t inside = width - 2;
  const size_t filled = std::min(inside, static_cast<size_t>(fraction * inside));
  return absl::StrCat("[", std::string(filled, '#'), std::string(inside - filled, '.'), "]");
}

// One lock for everything written to the progress line's row, so that a
// redraw, an erase and a take-over never interleave.
std::mutex g_draw_mu;
bool g_shown = false;       // a progress line is on the terminal
bool g_taken_over = false;  // TakeOverProgressLine() was called

}  // namespace

bool TakeOverProgressLine() {
  std::lock_guard<std::mutex> lock(g_draw_mu);
  g_taken_over = true;
  if (!g_shown) return false;
  std::fprintf(stderr, "\r%s", kEraseToEnd);
  std::fflush(stderr);
  g_shown = false;
  return true;
}

std::string FormatProgressLine(const ProgressState& state, int columns) {
  const size_t room = static_cast<size_t>(std::max(columns - 1, 1));
  const double fraction =
      state.bytes_total > 0
          ? std::min(1.0, static_cast<double>(state.bytes_done) / state.bytes_total)
          : 1.0;
  const double rate = state.seconds > 0 ? state.bytes_done / state.seconds : 0;
  std::string eta = "ETA ?";
  if (state.bytes_done >= state.bytes_total) {
    eta = "ETA 0s";
  } else if (rate > 0) {
    eta = absl::StrCat("ETA ", FormatDuration((state.bytes_total - state.bytes_done) / rate));
  }
  // In the order they are shown; `drop` is the order in which they go when
  // the line is too long (the bar, index 2, is sized last).
  std::vector<std::string> pieces = {
      state.label,
      absl::StrFormat("%3.0f%%", fraction * 100),
      "",  // the bar
      absl::StrCat(FormatBytes(state.bytes_done), "/", FormatBytes(state.bytes_total)),
      absl::StrCat(FormatBytes(static_cast<uint64_t>(rate)), "/s"),
      eta,
      state.items_total > 0
          ? absl::StrCat(state.items_done, "/", state.items_total, " ", state.items_name)
          : std::string()};
  std::vector<bool> shown(pieces.size(), true);
  shown[6] = !pieces[6].empty();
  const size_t drop[] = {6, 4, 3, 2, 5};
  auto length = [&](size_t bar) {
    size_t n = 0, count = 0;
    for (size_t i = 0; i < pieces.size(); ++i) {
      if (!shown[i]) continue;
      n += i == 2 ? bar : pieces[i].size();
      ++count;
    }
    return n + (count > 0 ? count - 1 : 0);
  };
  for (size_t d : drop) {
    if (length(kMinBar) <= room) break;
    shown[d] = false;
  }
  if (shown[2]) {
    const size_t bar = std::min(kMaxBar, kMinBar + (room - std::min(room, length(kMinBar))));
    pieces[2] = Bar(fraction, bar);
  }
  std::vector<std::string> kept;
  for (size_t i = 0; i < pieces.size(); ++i) {
    if (shown[i]) kept.push_back(pieces[i]);
  }
  std::string line = absl::StrJoin(kept, " ");
  if (line.size() > room) line.resize(room);
  return line;
}

ProgressLine::ProgressLine(bool wanted) : enabled_(wanted && IsTerminal(STDERR_FILENO)) {}

ProgressLine::~ProgressLine() { Finish(); }

void ProgressLine::Update(const ProgressState& state) {
  if (!enabled_) return;
  const std::string line = FormatProgressLine(state, TerminalColumns(STDERR_FILENO));
  std::lock_guard<std::mutex> lock(g_draw_mu);
  if (finished_ || g_taken_over) return;
  std::fprintf(stderr, "\r%s%s", line.c_str(), kEraseToEnd);
  std::fflush(stderr);
  drawn_ = true;
  g_shown = true;
}

void ProgressLine::Finish() {
  std::lock_guard<std::mutex> lock(g_draw_mu);
  if (finished_) return;
  finished_ = true;
  if (drawn_ && g_shown) {
    std::fprintf(stderr, "\r%s", kEraseToEnd);
    std::fflush(stderr);
    g_shown = false;
  }
}

}  // namespace zcpack::cli

// The progress line of long commands (convert, synth, verify): one line on
// stderr, redrawn in place, sized to the terminal, with throughput, ETA and
// human-readable sizes.
//
// Drawn only where someone watches: stderr must be a terminal, and the
// command not asked for --quiet or --json. Off a terminal nothing is written
// (a log or a pipe gets the result only). Each redraw is "\r", the line (at
// most one column narrower than the terminal, so that the cursor never
// wraps), then ESC[K to erase what a longer earlier line left; Finish()
// erases the line, so the screen keeps no fragment of it.
#ifndef ZCPACK_TOOLS_CLI_PROGRESS_H_
#define ZCPACK_TOOLS_CLI_PROGRESS_H_

#include <cstdint>
#include <string>

namespace zcpack::cli {

// Where a long job stands.
struct ProgressState {
  std::string label;        // what is running: "convert", "verify", ...
  uint64_t bytes_done = 0;
  uint64_t bytes_total = 0;
  uint64_t items_done = 0;  // tensors, files; items_total 0: not shown
  uint64_t items_total = 0;
  std::string items_name;   // "tensors"
  double seconds = 0;       // since the job started
};

// FormatProgressLine(): the state as one line of at most `columns` - 1
// characters (ASCII only): the label, the percentage, a bar, the bytes done
// and total, the throughput, the ETA and the items. When the width is short
// the items go first, then the ETA, the throughput, the sizes and the bar,
// so that what is left still reads; at the narrowest, the label and the
// percentage, cut to fit.
std::string FormatProgressLine(const ProgressState& state, int columns);

// TakeOverProgressLine(): for a last message that must take the progress
// line's place (an interrupt): erases a progress line that is on the
// terminal and returns true (false when none is), and keeps every progress
// line from drawing again. Waits for a redraw in progress to end.
bool TakeOverProgressLine();

// ProgressLine: draws a ProgressState on stderr. Thread-safe: Update() may be
// called from worker threads (draws, erases and TakeOverProgressLine() are
// serialized by one lock).
class ProgressLine {
 public:
  // Enabled when `wanted` (not --quiet, not --json) and stderr is a terminal.
  explicit ProgressLine(bool wanted);
  ~ProgressLine();  // Finish()
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  bool enabled() const { return enabled_; }
  // Update(): redraws the line for `state` (asking the terminal's width each
  // time); nothing when disabled or after Finish().
  void Update(const ProgressState& state);
  // Finish(): erases the line if one was drawn; later updates draw nothing.
  void Finish();

 private:
  const bool enabled_;
  bool drawn_ = false;     // guarded by the drawing lock (progress.cc)
  bool finished_ = false;  // likewise
};

}  // namespace zcpack::cli

#endif  // ZCPACK_TOOLS_CLI_PROGRESS_H_

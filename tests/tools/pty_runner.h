// Runs the zcpack binary on a pseudo-terminal of a given size, as a person at
// a terminal would, and replays what it wrote through a minimal model of the
// screen, so that a test can check what the screen finally shows.
#ifndef ZCPACK_TESTS_TOOLS_PTY_RUNNER_H_
#define ZCPACK_TESTS_TOOLS_PTY_RUNNER_H_

#include <string>
#include <vector>

namespace zcpack::testing {

// A terminal screen `columns` wide (rows unbounded: nothing scrolls away)
// fed with bytes. Understands printable ASCII (UTF-8 continuation bytes take
// no column), \r, \n (the pty turns it into \r\n), \b, \t, and the erase
// sequences the progress line emits: ESC[K / ESC[0K (to the end of the
// line), ESC[1K (to the cursor), ESC[2K (the whole line). A character written
// past the last column wraps to the next line, as a terminal with
// auto-margins does, and is counted in wraps(); any other escape sequence is
// recorded in unknown_sequences().
class ScreenModel {
 public:
  explicit ScreenModel(int columns);
  void Feed(const std::string& bytes);
  // The final lines, trailing blanks removed, trailing empty lines dropped.
  std::vector<std::string> Lines() const;
  int wraps() const { return wraps_; }
  const std::vector<std::string>& unknown_sequences() const { return unknown_; }

 private:
  void Put(char c);
  std::string& Row();
  const int columns_;
  std::vector<std::string> rows_ = {""};
  size_t row_ = 0;
  int col_ = 0;
  int wraps_ = 0;
  std::vector<std::string> unknown_;
  std::string pending_escape_;
};

struct PtyResult {
  int exit_code = -1;  // as CliResult::exit_code
  std::string raw;     // every byte read from the terminal
  std::string stdout_file;  // with stdout_to_file: what went to stdout
};

// RunZcpackInPty(): runs `zcpack ARGS...` with stdin, stdout and stderr on a
// new pseudo-terminal whose window size is set to `columns` x `rows`
// (TIOCSWINSZ) before the command starts, with $COLUMNS unset; with
// `stdout_to_file`, stdout goes to a file instead (stderr stays on the
// terminal). Collects everything written to the terminal until the command
// exits; kills it after `timeout_seconds`. With `interrupt_when_seen`, sends
// the command SIGINT once its output holds that text.
PtyResult RunZcpackInPty(const std::vector<std::string>& args, int columns, int rows = 24,
                         bool stdout_to_file = false, double timeout_seconds = 600,
                         const std::string& interrupt_when_seen = "");

}  // namespace zcpack::testing

#endif  // ZCPACK_TESTS_TOOLS_PTY_RUNNER_H_

// Runs the zcpack binary as a user would and captures what it prints.
#ifndef ZCPACK_TESTS_TOOLS_CLI_RUNNER_H_
#define ZCPACK_TESTS_TOOLS_CLI_RUNNER_H_

#include <string>
#include <vector>

namespace zcpack::testing {

struct CliResult {
  int exit_code = -1;  // the exit status, or 128 + signal when killed
  std::string out;
  std::string err;
  // The peak resident set of the process (getrusage's ru_maxrss: anonymous
  // and file-backed pages, the mapped input included), in KiB.
  long max_rss_kib = 0;
};

// RunZcpack(): runs `zcpack ARGS...` (the binary built with this tree) with
// stdin closed and stdout/stderr captured. `setup` runs in the child before
// exec (for example to set a resource limit); it may be empty.
CliResult RunZcpack(const std::vector<std::string>& args, void (*setup)() = nullptr);

// A zcpack process started by StartZcpack() and not yet waited for.
struct RunningZcpack {
  int pid = -1;
  std::string dir;  // holds its captured stdout and stderr
};

// StartZcpack(): RunZcpack() without waiting, so that a test can act on the
// file while the command runs.
RunningZcpack StartZcpack(const std::vector<std::string>& args, void (*setup)() = nullptr);

// FinishZcpack(): waits for `running` and collects what it printed; kills it
// (SIGKILL, exit code 128 + 9) when it runs for more than `timeout_seconds`.
CliResult FinishZcpack(const RunningZcpack& running, double timeout_seconds = 600);

// ZcpackCommandLine(): the zcpack binary built with this tree, then `args`.
std::vector<std::string> ZcpackCommandLine(const std::vector<std::string>& args);

// ReadWholeFile(): the whole file at `path`; "" when it cannot be read.
std::string ReadWholeFile(const std::string& path);

// A fresh, empty folder under the test temp dir; removed by the caller.
std::string MakeTempDir(const std::string& tag);

// Removes a folder tree (best effort).
void RemoveTree(const std::string& path);

}  // namespace zcpack::testing

#endif  // ZCPACK_TESTS_TOOLS_CLI_RUNNER_H_

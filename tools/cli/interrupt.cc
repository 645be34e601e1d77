#include "tools/cli/interrupt.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "tools/cli/json_output.h"
#include "tools/cli/progress.h"
#include "zcpack/format/temp_file.h"

namespace zcpack::cli {
namespace {

constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP};

// Why a thread that waits in sigwait() rather than a signal handler: the
// cleanup has to see every temporary file of the process, and the files
// come and go on worker threads (synth writes several; a writer removes its
// file on failure). A handler may call only async-signal-safe functions, so
// it could not take the registry's mutex; it would have to read a lock-free
// list that another thread may be changing, and a file created between
// mkostemp() and its listing would be missed. This thread is an ordinary
// thread: it takes the mutex (format::AbandonTempFiles()), so a file is
// either listed and removed or not created at all, and none is installed
// after it, then ends the process with _exit() (no exit handlers, no
// destructors racing the other threads).
void WaitForInterrupt(sigset_t signals, std::string command, bool json, std::string input) {
  int signal = 0;
  while (::sigwait(&signals, &signal) != 0) {
  }
  const int removed = format::AbandonTempFiles();
  const char* name = ::sigabbrev_np(signal);  // "INT", "TERM", "HUP"
  std::string what = absl::StrCat("interrupted (",
                                  name != nullptr ? absl::StrCat("SIG", name) : "a signal", ")");
  if (removed > 0) {
    absl::StrAppend(&what, "; removed ", removed, " unfinished output file",
                    removed == 1 ? "" : "s");
  }
  if (json) {
    const std::string report =
        ErrorReportText(command, absl::CancelledError(what), 128 + signal, input) + "\n";
    (void)!::write(STDOUT_FILENO, report.data(), report.size());
  }
  // A terminal shows "^C" after whatever was last written: a progress line
  // (tools/cli/progress.h) is erased (carriage return, ESC[K) and the message
  // takes its place, so that no fragment of it stays; after anything else
  // the message starts on a line of its own.
  const char* start = TakeOverProgressLine() ? "" : ::isatty(STDERR_FILENO) ? "\n" : "";
  const std::string line = absl::StrCat(start, "zcpack ", command, ": ", what, "\n");
  (void)!::write(STDERR_FILENO, line.data(), line.size());
  ::_exit(128 + signal);
}

}  // namespace

void HandleInterrupts(const std::string& command, bool json, const std::string& input) {
  sigset_t signals;
  sigemptyset(&signals);
  bool any = false;
  for (const int signal : kSignals) {
    struct sigaction current {};
    if (::sigaction(signal, nullptr, &current) == 0 && current.sa_handler == SIG_IGN) continue;
    sigaddset(&signals, signal);
    any = true;
  }
  if (!any) return;
  ::pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::thread(WaitForInterrupt, signals, command, json, input).detach();
}

void UnblockInterruptsInChild() {
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

}  // namespace zcpack::cli

// What `zcpack` does when it is interrupted: on SIGINT, SIGTERM or SIGHUP
// every command removes the temporary files it was writing (so an unfinished
// output never stays behind, full-size and hidden, beside the destination),
// says so in one stderr line and exits with 128 + the signal number (130,
// 143, 129), as a shell reports a process ended by that signal.
#ifndef ZCPACK_TOOLS_CLI_INTERRUPT_H_
#define ZCPACK_TOOLS_CLI_INTERRUPT_H_

#include <string>

namespace zcpack::cli {

// HandleInterrupts(): blocks SIGINT, SIGTERM and SIGHUP in the calling
// thread, and so in every thread started after it, and starts one thread
// that waits for them. When one arrives it removes this process's temporary
// files (format::AbandonTempFiles()), writes "zcpack COMMAND: interrupted
// (SIGINT)..." to stderr and ends the process with _exit(128 + signal). A
// signal ignored when the program started (`nohup`, a background job of a
// non-interactive shell) stays ignored. Call it once, from main(), before
// any other thread exists: a thread started earlier would keep the signals
// unblocked and could be the one they are delivered to. A child process
// must unblock them before exec (UnblockInterruptsInChild()).
// With `json` (the command was given --json), it also writes the --json
// error object (code "interrupted", docs/JSON.md) to stdout, naming
// `input`: a report is printed whole at the end, so an interrupted command
// has printed none.
void HandleInterrupts(const std::string& command, bool json = false,
                      const std::string& input = "");

// UnblockInterruptsInChild(): in a child between fork() and exec(), restores
// an empty signal mask, so that the program it runs can be interrupted.
// Async-signal-safe.
void UnblockInterruptsInChild();

}  // namespace zcpack::cli

#endif  // ZCPACK_TOOLS_CLI_INTERRUPT_H_

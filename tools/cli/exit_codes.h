// The exit codes of the zcpack command-line program. Documented in README.md
// and in `zcpack --help`; tests in tests/tools check them.
#ifndef ZCPACK_TOOLS_CLI_EXIT_CODES_H_
#define ZCPACK_TOOLS_CLI_EXIT_CODES_H_

#include <exception>
#include <new>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace zcpack::cli {

enum ExitCode : int {
  kExitOk = 0,
  // The input was read and is unsound: not a container, corrupt, unsupported
  // version or feature, inconsistent, or (verify) a check failed.
  kExitInputRejected = 1,
  // The command line is wrong: an unknown flag, a missing or malformed value,
  // a value the command cannot use (each command's check_usage in
  // zcpack_main.cc finds these before any input is read), the wrong number of
  // arguments. Or the command refuses (output exists without --force, output
  // would overwrite the input).
  kExitUsage = 2,
  // An I/O, system or resource error: a file missing or unreadable, a full
  // disk, a reader limit exceeded, out of memory, an internal error (an
  // exception, StatusOfCall()).
  kExitIoError = 3,
  // Not returned by ExitCodeFor(): a command ended by SIGINT, SIGTERM or
  // SIGHUP exits with 128 + the signal (130, 143, 129), as a shell reports
  // a process killed by it, after removing its unfinished output
  // (tools/cli/interrupt.h).
};

// ExitCodeName(): the name --json error objects give an exit code
// (docs/JSON.md, "Errors"): "ok", "input_rejected", "usage", "system",
// "interrupted" (128 + a signal), "unknown" for anything else.
inline const char* ExitCodeName(int code) {
  switch (code) {
    case kExitOk:
      return "ok";
    case kExitInputRejected:
      return "input_rejected";
    case kExitUsage:
      return "usage";
    case kExitIoError:
      return "system";
    case 128 + 1:   // SIGHUP
    case 128 + 2:   // SIGINT
    case 128 + 15:  // SIGTERM
      return "interrupted";
    default:
      return "unknown";
  }
}

// ExitCodeFor(): the exit code for a command's final status.
inline int ExitCodeFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return kExitOk;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kUnimplemented:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return kExitInputRejected;
    case absl::StatusCode::kAlreadyExists:
      return kExitUsage;
    default:
      return kExitIoError;
  }
}

// StatusOfCall(): `call()`'s status, or, when it throws, a status saying so,
// so that an exception never ends the program with std::terminate (SIGABRT
// and no message): ResourceExhausted for std::bad_alloc, Internal naming
// what() for any other std::exception (a JSON error, say), Internal for
// anything else. All three are exit code 3.
template <typename Call>
absl::Status StatusOfCall(Call&& call) {
  try {
    return call();
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("out of memory");
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("internal error: ", e.what()));
  } catch (...) {
    return absl::InternalError("internal error: unknown exception");
  }
}

}  // namespace zcpack::cli

#endif  // ZCPACK_TOOLS_CLI_EXIT_CODES_H_

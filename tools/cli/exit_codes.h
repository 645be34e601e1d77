// The exit codes of the zcpack command-line program. Documented in README.md
// and in `zcpack --help`; tests in tests/tools check them.
#ifndef ZCPACK_TOOLS_CLI_EXIT_CODES_H_
#define ZCPACK_TOOLS_CLI_EXIT_CODES_H_

#include "absl/status/status.h"

namespace zcpack::cli {

enum ExitCode : int {
  kExitOk = 0,
  // The input was read and is unsound: not a container, corrupt, unsupported
  // version or feature, inconsistent, or (verify) a check failed.
  kExitInputRejected = 1,
  // The command line is wrong, or the command refuses (output exists without
  // --force, output would overwrite the input).
  kExitUsage = 2,
  // An I/O, system or resource error: a file missing or unreadable, a full
  // disk, a reader limit exceeded, an internal error.
  kExitIoError = 3,
};

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

}  // namespace zcpack::cli

#endif  // ZCPACK_TOOLS_CLI_EXIT_CODES_H_

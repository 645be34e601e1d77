// Byte counts and durations as people write and read them, for every
// command: flags that take a byte count accept "16K" or "2MiB" (ByteCount),
// and reports and progress lines print "3.52 GiB" and "1m05s".
#ifndef ZCPACK_TOOLS_CLI_UNITS_H_
#define ZCPACK_TOOLS_CLI_UNITS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace zcpack::cli {

// ParseByteSize(): "21474836480", "20GiB", "20G", "1.5g", "512MiB", "64k":
// a number with an optional binary unit (K, M, G, T; "iB"/"B" optional; case
// does not matter). InvalidArgument otherwise, for a fraction of a byte
// ("1.5", "0.3K"), or for more than 2^63 bytes.
absl::StatusOr<uint64_t> ParseByteSize(absl::string_view text);

// FormatBytes(): "3.52 GiB", "812 MiB", "17.00 KiB", "12 B".
std::string FormatBytes(uint64_t bytes);

// FormatDuration(): whole seconds as "7s", "1m05s", "2h03m"; "?" for a
// negative or non-finite value or one beyond 99 hours.
std::string FormatDuration(double seconds);

// ByteCount: the type of a flag that takes a byte count. absl parses it
// with ParseByteSize() (AbslParseFlag() below), so that every such flag
// accepts the same suffixes; AbslUnparseFlag() gives the plain number.
struct ByteCount {
  uint64_t bytes = 0;
};
bool AbslParseFlag(absl::string_view text, ByteCount* count, std::string* error);
std::string AbslUnparseFlag(ByteCount count);

}  // namespace zcpack::cli

#endif  // ZCPACK_TOOLS_CLI_UNITS_H_

#include "tools/cli/units.h"

#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"

namespace zcpack::cli {

absl::StatusOr<uint64_t> ParseByteSize(absl::string_view text) {
  const std::string lower = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text));
  absl::string_view rest = lower;
  size_t digits = 0;
  while (digits < rest.size() && (absl::ascii_isdigit(rest[digits]) || rest[digits] == '.')) {
    ++digits;
  }
  double number = 0;
  if (digits == 0 || !absl::SimpleAtod(rest.substr(0, digits), &number) || number < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "' is not a byte size (e.g. 16384, 16K, 2MiB, 20GiB)"));
  }
  absl::string_view unit = absl::StripAsciiWhitespace(rest.substr(digits));
  if (!absl::ConsumeSuffix(&unit, "ib")) absl::ConsumeSuffix(&unit, "b");
  int shift = 0;
  if (unit == "k") shift = 10;
  else if (unit == "m") shift = 20;
  else if (unit == "g") shift = 30;
  else if (unit == "t") shift = 40;
  else if (!unit.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "': unknown unit (use K, M, G or T)"));
  }
  const double bytes = std::ldexp(number, shift);
  if (bytes >= std::ldexp(1.0, 63)) {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "' is too large"));
  }
  if (bytes != std::floor(bytes)) {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "' is not a whole number of bytes"));
  }
  return static_cast<uint64_t>(bytes);
}

std::string FormatBytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  if (u == 0) return absl::StrCat(bytes, " B");
  return absl::StrFormat(v >= 100 ? "%.0f %s" : "%.2f %s", v, units[u]);
}

std::string FormatDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0 || seconds >= 99 * 3600.0) return "?";
  const int64_t s = static_cast<int64_t>(std::llround(seconds));
  if (s < 60) return absl::StrCat(s, "s");
  if (s < 3600) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  return absl::StrFormat("%dh%02dm", s / 3600, s % 3600 / 60);
}

bool AbslParseFlag(absl::string_view text, ByteCount* count, std::string* error) {
  const absl::StatusOr<uint64_t> bytes = ParseByteSize(text);
  if (!bytes.ok()) {
    *error = std::string(bytes.status().message());
    return false;
  }
  count->bytes = *bytes;
  return true;
}

std::string AbslUnparseFlag(ByteCount count) { return absl::StrCat(count.bytes); }

}  // namespace zcpack::cli

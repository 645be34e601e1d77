#include "zcpack/format/utf8.h"

#include <cstddef>
#include <cstdint>

#include "absl/strings/str_format.h"

namespace zcpack::format {
namespace {

// The length of the well-formed UTF-8 sequence at text[i], or 0 when the
// byte there does not start one (RFC 3629, table 3-7 of the Unicode
// standard: the second byte's range depends on the first).
size_t SequenceLength(absl::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<uint8_t>(text[k]); };
  const uint8_t b0 = byte(i);
  if (b0 < 0x80) return 1;
  size_t length = 0;
  uint8_t low = 0x80, high = 0xbf;  // the second byte's range
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    length = 2;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    length = 3;
    if (b0 == 0xe0) low = 0xa0;   // no overlong forms
    if (b0 == 0xed) high = 0x9f;  // no surrogates
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    length = 4;
    if (b0 == 0xf0) low = 0x90;   // no overlong forms
    if (b0 == 0xf4) high = 0x8f;  // nothing above U+10FFFF
  } else {
    return 0;
  }
  if (text.size() - i < length) return 0;
  if (byte(i + 1) < low || byte(i + 1) > high) return 0;
  for (size_t k = 2; k < length; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xbf) return 0;
  }
  return length;
}

// `text` with each byte that starts no well-formed sequence replaced by
// what `replace` appends for it.
template <typename Replace>
std::string Rewrite(absl::string_view text, Replace replace) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const size_t n = SequenceLength(text, i);
    if (n == 0) {
      replace(out, static_cast<uint8_t>(text[i]));
      ++i;
    } else {
      out.append(text.data() + i, n);
      i += n;
    }
  }
  return out;
}

}  // namespace

bool IsValidUtf8(absl::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const size_t n = SequenceLength(text, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string EscapeInvalidUtf8(absl::string_view text) {
  return Rewrite(text, [](std::string& out, uint8_t b) { absl::StrAppendFormat(&out, "\\x%02x", b); });
}

std::string ReplaceInvalidUtf8(absl::string_view text) {
  return Rewrite(text, [](std::string& out, uint8_t) { out.append("\xef\xbf\xbd"); });
}

}  // namespace zcpack::format

// UTF-8 checks for text that reaches a manifest or a message.
//
// Protobuf string fields must hold valid UTF-8: a manifest with a tensor name
// or a file name that is not would serialise, and then no reader could parse
// it. File names on Linux are bytes, and GGUF names are whatever the file
// holds, so such text is checked (names) or escaped (file names, messages)
// before it is stored or printed.
#ifndef ZCPACK_FORMAT_UTF8_H_
#define ZCPACK_FORMAT_UTF8_H_

#include <string>

#include "absl/strings/string_view.h"

namespace zcpack::format {

// IsValidUtf8(): whether `text` is well-formed UTF-8 (RFC 3629: no overlong
// forms, no surrogates, nothing above U+10FFFF). NUL bytes are valid.
bool IsValidUtf8(absl::string_view text);

// EscapeInvalidUtf8(): `text` with every byte that is not part of a
// well-formed UTF-8 sequence written as \xNN (two lowercase hex digits);
// valid text is returned unchanged. The result is always valid UTF-8.
std::string EscapeInvalidUtf8(absl::string_view text);

}  // namespace zcpack::format

#endif  // ZCPACK_FORMAT_UTF8_H_

// The one way the zcpack commands turn a JSON report into text.
//
// nlohmann::json stores std::string as given and throws type_error 316 from
// dump() when a string is not UTF-8. Linux paths are bytes and tensor names
// come from untrusted files, so a report that echoes either could abort the
// program after the work was done (convert had already written its output).
// JsonText() is the chokepoint: every string, and every object key, passes
// through format::EscapeInvalidUtf8() first, so the text is always valid
// UTF-8 and the bad bytes stay visible as \xNN, the same spelling the
// manifest and the error messages use.
#ifndef ZCPACK_TOOLS_CLI_JSON_OUTPUT_H_
#define ZCPACK_TOOLS_CLI_JSON_OUTPUT_H_

#include <string>

#include "nlohmann/json.hpp"

namespace zcpack::cli {

// JsonText(): `report` serialised with `indent` spaces (-1: one line), after
// escaping invalid UTF-8 in its strings and keys. Never throws for a report
// built from strings, numbers, booleans, null, arrays and objects.
std::string JsonText(nlohmann::json report, int indent = 2);

}  // namespace zcpack::cli

#endif  // ZCPACK_TOOLS_CLI_JSON_OUTPUT_H_

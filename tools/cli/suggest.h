// "Did you mean ...?": the closest of a few known words to a misspelled one.
#ifndef ZCPACK_TOOLS_CLI_SUGGEST_H_
#define ZCPACK_TOOLS_CLI_SUGGEST_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace zcpack::cli {

// EditDistance(): the Levenshtein distance between `a` and `b` (insertions,
// deletions and substitutions of one byte each count 1), ASCII case ignored.
size_t EditDistance(absl::string_view a, absl::string_view b);

// ClosestMatch(): the candidate nearest to `word` by EditDistance(), when it
// is near enough to be a misspelling (at most 2 edits, changing at most
// half of the longer of the two), else "". Ties go to the earlier candidate.
std::string ClosestMatch(absl::string_view word, const std::vector<std::string>& candidates);

// DidYouMean(): " (did you mean PREFIX + match?)" for ClosestMatch(), or "".
std::string DidYouMean(absl::string_view word, const std::vector<std::string>& candidates,
                       absl::string_view prefix = "");

}  // namespace zcpack::cli

#endif  // ZCPACK_TOOLS_CLI_SUGGEST_H_

#include "tools/cli/suggest.h"

#include <algorithm>
#include <numeric>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace zcpack::cli {

size_t EditDistance(absl::string_view a, absl::string_view b) {
  // One row of the dynamic-programming table at a time: row[j] is the
  // distance between the first i bytes of a and the first j bytes of b.
  std::vector<size_t> row(b.size() + 1);
  std::iota(row.begin(), row.end(), size_t{0});
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];  // distance(a[0, i-1), b[0, j-1))
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t substitution =
          diagonal + (absl::ascii_tolower(static_cast<unsigned char>(a[i - 1])) ==
                              absl::ascii_tolower(static_cast<unsigned char>(b[j - 1]))
                          ? 0
                          : 1);
      diagonal = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, substitution});
    }
  }
  return row[b.size()];
}

std::string ClosestMatch(absl::string_view word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = 0;
  for (const std::string& candidate : candidates) {
    const size_t distance = EditDistance(word, candidate);
    // At most two edits, and at most half of the longer word changed ("q8"
    // is near "q8_0"; "q9" is not near "f32").
    const bool near = distance <= 2 && 2 * distance <= std::max(word.size(), candidate.size());
    if (near && (best.empty() || distance < best_distance)) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

std::string DidYouMean(absl::string_view word, const std::vector<std::string>& candidates,
                       absl::string_view prefix) {
  const std::string match = ClosestMatch(word, candidates);
  if (match.empty()) return std::string();
  return absl::StrCat(" (did you mean ", prefix, match, "?)");
}

}  // namespace zcpack::cli

// first_logits: the logits zcpack's runtime gives after a prompt, compared
// with another program's (llama_greedy writes its first-step logits to
// logits0.bin as vocab_size raw little-endian float32).
//
//   first_logits CONTAINER IDS [THREADS] [--against LOGITS.bin] [--out FILE]
//                [--one-by-one] [--then IDS]
//
// IDS is a comma-separated prompt, evaluated as one batch (or, with
// --one-by-one, one token at a time as decoding does). --then decodes more
// ids after it, one at a time, and the logits are those after the last: the
// state of a greedy run at any step. Prints the argmax, and with --against the
// cosine similarity, the largest absolute difference (and the largest
// |logit| for scale) and whether the argmax agrees. --out writes zcpack's
// logits in the same raw format. Exit 1 on any error.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "zcpack/runtime/model.h"
#include "zcpack/runtime/session.h"

namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "first_logits: %s\n", message.c_str());
  return 1;
}

size_t ArgMax(const std::vector<float>& v) {
  size_t best = 0;
  for (size_t i = 1; i < v.size(); ++i) {
    if (v[i] > v[best]) best = i;
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    return Fail(
        "usage: first_logits CONTAINER IDS [THREADS] [--against LOGITS.bin] [--out FILE] "
        "[--one-by-one] [--then IDS]");
  }
  const std::string path = argv[1];
  auto parse_ids = [](absl::string_view list, std::vector<int32_t>& ids) {
    for (absl::string_view part : absl::StrSplit(list, ',')) {
      int32_t id = 0;
      if (!absl::SimpleAtoi(part, &id)) return false;
      ids.push_back(id);
    }
    return true;
  };
  std::vector<int32_t> ids, then;
  if (!parse_ids(argv[2], ids)) return Fail(std::string("bad token ids '") + argv[2] + "'");
  int threads = 0;
  std::string against, out;
  bool one_by_one = false;
  for (int i = 3; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--then" && i + 1 < argc) {
      if (!parse_ids(argv[++i], then)) return Fail(std::string("bad token ids '") + argv[i] + "'");
    } else if (arg == "--against" && i + 1 < argc) {
      against = argv[++i];
    } else if (arg == "--out" && i + 1 < argc) {
      out = argv[++i];
    } else if (arg == "--one-by-one") {
      one_by_one = true;
    } else if (!absl::SimpleAtoi(arg, &threads)) {
      return Fail("unknown argument " + arg);
    }
  }
  auto model = zcpack::runtime::Model::Open(path);
  if (!model.ok()) return Fail(std::string(model.status().message()));
  zcpack::runtime::SessionOptions options;
  options.threads = threads;
  options.max_context = static_cast<int>(ids.size() + then.size());
  auto session = zcpack::runtime::Session::Create(**model, options);
  if (!session.ok()) return Fail(std::string(session.status().message()));
  absl::StatusOr<std::span<const float>> logits;
  if (one_by_one) {
    for (size_t i = 0; i < ids.size(); ++i) {
      logits = (*session)->Evaluate(std::span<const int32_t>(ids.data() + i, 1));
      if (!logits.ok()) break;
    }
  } else {
    logits = (*session)->Evaluate(ids);
  }
  for (size_t i = 0; i < then.size() && logits.ok(); ++i) {
    logits = (*session)->Evaluate(std::span<const int32_t>(then.data() + i, 1));
  }
  if (!logits.ok()) return Fail(std::string(logits.status().message()));
  const std::vector<float> mine(logits->begin(), logits->end());
  std::printf("zcpack argmax %zu of %zu logits\n", ArgMax(mine), mine.size());
  if (!out.empty()) {
    std::ofstream file(out, std::ios::binary);
    file.write(reinterpret_cast<const char*>(mine.data()),
               static_cast<std::streamsize>(mine.size() * sizeof(float)));
    if (!file) return Fail("cannot write " + out);
  }
  if (against.empty()) return 0;
  std::ifstream file(against, std::ios::binary);
  std::vector<float> theirs(mine.size());
  file.read(reinterpret_cast<char*>(theirs.data()),
            static_cast<std::streamsize>(theirs.size() * sizeof(float)));
  if (!file || file.peek() != std::char_traits<char>::eof()) {
    return Fail(against + " does not hold exactly " + std::to_string(mine.size()) + " floats");
  }
  double dot = 0, mine2 = 0, theirs2 = 0, max_diff = 0, max_abs = 0;
  for (size_t i = 0; i < mine.size(); ++i) {
    dot += static_cast<double>(mine[i]) * theirs[i];
    mine2 += static_cast<double>(mine[i]) * mine[i];
    theirs2 += static_cast<double>(theirs[i]) * theirs[i];
    max_diff = std::max(max_diff, std::abs(static_cast<double>(mine[i]) - theirs[i]));
    max_abs = std::max(max_abs, std::abs(static_cast<double>(theirs[i])));
  }
  const size_t their_argmax = ArgMax(theirs);
  std::printf("cosine %.8f  max |diff| %.6g (max |logit| %.4g)  argmax %zu vs %zu: %s\n",
              dot / std::sqrt(mine2 * theirs2), max_diff, max_abs, ArgMax(mine), their_argmax,
              ArgMax(mine) == their_argmax ? "same" : "DIFFERENT");
  return 0;
}

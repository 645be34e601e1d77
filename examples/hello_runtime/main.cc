// hello: opens a zcpack container zero-copy with the C++ API and generates a
// few tokens greedily from a fixed prompt.
#include <cstdio>
#include <vector>

#include "zcpack/runtime/model.h"
#include "zcpack/runtime/session.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: hello MODEL.zcpack\n");
    return 2;
  }
  auto model = zcpack::runtime::Model::Open(argv[1]);
  if (!model.ok()) {
    std::fprintf(stderr, "hello: %s\n", std::string(model.status().message()).c_str());
    return 1;
  }
  auto session = zcpack::runtime::Session::Create(**model, {.max_context = 64, .threads = 0});
  if (!session.ok()) return 1;
  const std::vector<int32_t> prompt = {1, 2, 3};
  zcpack::runtime::GenerateStats stats;
  auto tokens = zcpack::runtime::Generate(**session, prompt, 8, {}, false, &stats);
  if (!tokens.ok()) {
    std::fprintf(stderr, "hello: %s\n", std::string(tokens.status().message()).c_str());
    return 1;
  }
  std::printf("opened in %.3f ms; generated:", (*model)->open_seconds() * 1e3);
  for (int32_t t : *tokens) std::printf(" %d", t);
  std::printf("\n");
  return 0;
}

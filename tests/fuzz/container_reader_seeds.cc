// Seed corpus for container_reader_fuzzer: writes small valid containers
// (every dtype, 4 KiB alignment, compressed and uncompressed manifests), the
// hand-made fixture container and the broken-container table into the folder
// given as argv[1]. Each seed is tens of KiB.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/testing/container_fixtures.h"

namespace {

using zcpack::format::WriterOptions;
namespace fixtures = zcpack::testing;

bool Report(const absl::Status& status, const std::string& what) {
  if (!status.ok()) std::fprintf(stderr, "container_reader_seeds: %s: %s\n", what.c_str(),
                                 status.ToString().c_str());
  return status.ok();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_FOLDER\n", argv[0]);
    return 2;
  }
  const std::string folder = argv[1];
  bool ok = true;

  // Written by ContainerWriter: a handful of tensor counts and both manifests.
  int index = 0;
  for (size_t count : {0u, 1u, 5u, 7u}) {
    for (bool compress : {false, true}) {
      WriterOptions options;
      options.alignment = 4096;
      options.compress_manifest = compress;
      options.overwrite = true;
      const std::string path = absl::StrCat(folder, "/written_", index++, ".zcp");
      const auto tensors = fixtures::MakeRandomTensors(1000 + count, count, /*max_elements=*/512);
      ok &= Report(fixtures::WriteContainer(path, tensors, options), path);
    }
  }

  // Hand-made, then every broken case: each reaches a different check.
  for (bool compress : {false, true}) {
    fixtures::HandMadeContainer parts = fixtures::ValidHandMadeContainer();
    parts.compress_manifest = compress;
    const std::string path = absl::StrCat(folder, "/hand_made_", compress ? "zstd" : "raw", ".zcp");
    ok &= Report(fixtures::WriteFileBytes(path, fixtures::Assemble(parts)), path);
  }
  for (const auto& broken : fixtures::MakeBrokenContainers()) {
    const std::string path = absl::StrCat(folder, "/broken_", broken.name, ".zcp");
    ok &= Report(fixtures::WriteFileBytes(path, broken.bytes), path);
  }
  return ok ? 0 : 1;
}

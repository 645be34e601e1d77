// libFuzzer target: Container::OpenBuffer() over arbitrary bytes must never
// crash, and a container it accepts must be safe to use: every tensor span
// inside the buffer, every lookup consistent, checksums computable.
//
// Each input is opened twice: as it is, and with its header's file size and
// both header and manifest checksums recomputed. Mutations almost never keep
// a 64-bit checksum right, so without the second pass the fuzzer would stop
// at the checksum checks and seldom reach the manifest and tensor checks.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "google/protobuf/stubs/logging.h"
#include "xxhash.h"
#include "zcpack/format/coding.h"
#include "zcpack/format/container_reader.h"
#include "zcpack/format/header.h"

namespace {

namespace fmt = zcpack::format;

// Small limits keep every allocation the reader may make far below the
// fuzzer's memory limit.
fmt::ReaderOptions FuzzOptions() {
  fmt::ReaderOptions options;
  options.limits.max_tensors = 4096;
  options.limits.max_rank = 8;
  options.limits.max_name_bytes = 1024;
  options.limits.max_manifest_bytes = 1 << 20;
  options.limits.max_manifest_raw_bytes = 4 << 20;
  options.checksum_threads = 1;
  return options;
}

// An accepted container that breaks an invariant is a bug: stop loudly.
void Require(bool condition) {
  if (!condition) std::abort();
}

bool Inside(const fmt::ByteRange& r, uint64_t size) {
  return fmt::ByteRangeInBounds(r.offset, r.size, size);
}

void OpenAndUse(std::span<const uint8_t> bytes) {
  auto opened = fmt::Container::OpenBuffer(bytes, "fuzz-input", FuzzOptions());
  if (!opened.ok()) return;
  const fmt::Container& c = **opened;
  const uint8_t* const begin = bytes.data();
  const uint64_t size = bytes.size();
  Require(c.file_size() == size);
  Require(Inside(c.data_range(), size));
  uint8_t fold = 0;
  for (size_t i = 0; i < c.num_tensors(); ++i) {
    const std::span<const uint8_t> data = c.TensorData(i);
    Require(data.data() >= begin &&
            fmt::ByteRangeInBounds(static_cast<uint64_t>(data.data() - begin), data.size(), size));
    for (uint8_t b : data) fold ^= b;  // touches every byte: ASan checks the range
    const fmt::ByteRange extent = c.TensorExtent(i);
    Require(Inside(extent, size));
    Require(extent.offset % c.alignment() == 0 && extent.size >= data.size());
    const auto found = c.FindTensor(c.tensor(i).name());
    Require(found.has_value() && *found == i);
  }
  for (int layer = -1; layer <= c.num_layers(); ++layer) {
    if (const auto range = c.LayerRange(layer); range.has_value()) Require(Inside(*range, size));
  }
  Require(c.ComputeChecksums(1).size() == c.num_tensors());
  (void)c.VerifyChecksums(1);
  volatile uint8_t sink = fold;
  (void)sink;
}

// The input with its file size and checksums made to agree with its bytes.
std::vector<uint8_t> WithFixedChecksums(std::span<const uint8_t> bytes) {
  std::vector<uint8_t> fixed(bytes.begin(), bytes.end());
  if (fixed.size() < fmt::kHeaderSize) return fixed;
  const std::span<uint8_t, fmt::kHeaderSize> header(fixed.data(), fmt::kHeaderSize);
  fmt::ContainerHeader h = fmt::DecodeHeader(header);
  h.file_size = fixed.size();
  if (fmt::ByteRangeInBounds(h.manifest_offset, h.manifest_size, fixed.size())) {
    h.manifest_xxh3 = XXH3_64bits(fixed.data() + h.manifest_offset, h.manifest_size);
  }
  fmt::EncodeHeader(h, header);
  return fixed;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Invalid UTF-8 in string fields makes protobuf log every rejected input.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  OpenAndUse({data, size});
  OpenAndUse(WithFixedChecksums({data, size}));
  return 0;
}

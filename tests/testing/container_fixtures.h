// Test fixtures for zcpack containers: valid containers with random tensors of
// every dtype (written through ContainerWriter), a builder for hand-made
// containers, and a table of deliberately broken containers, each paired with
// the status code the reader must return.
//
// Shared by the format tests, the format fuzzer's seed generator and the
// validator's tests. Free of GoogleTest so that non-test programs can link it.
#ifndef ZCPACK_TESTS_TESTING_CONTAINER_FIXTURES_H_
#define ZCPACK_TESTS_TESTING_CONTAINER_FIXTURES_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "zcpack/format/container_reader.h"
#include "zcpack/format/container_writer.h"
#include "zcpack/format/header.h"
#include "zcpack/format/manifest.pb.h"

namespace zcpack::testing {

// Every dtype of format v1, in enum order.
inline constexpr format::DType kAllDTypes[] = {format::DTYPE_F32,  format::DTYPE_F16,
                                               format::DTYPE_BF16, format::DTYPE_Q4_0,
                                               format::DTYPE_Q4_K, format::DTYPE_Q8_0};

// A tensor to write: its plan and exactly TensorByteSize(plan) bytes.
struct TensorFixture {
  format::TensorPlan plan;
  std::vector<uint8_t> bytes;
};

// RandomShape(): a shape of rank 1 to 3 whose last dimension is a multiple of
// the dtype's block size and whose element count is at most `max_elements`
// (which must be at least one block).
std::vector<uint64_t> RandomShape(format::DType dtype, uint64_t max_elements, std::mt19937_64& rng);

// RandomBytes(): `n` uniformly random bytes.
std::vector<uint8_t> RandomBytes(size_t n, std::mt19937_64& rng);

// MakeRandomTensors(): `count` tensors cycling through every dtype, with
// random shapes of at most `max_elements` elements and random bytes. Names are
// unique ("t0", "t1", ...); layers follow the reading order: the first and
// last tensor have layer -1, the others form layers of up to three tensors.
// Deterministic for a given seed.
std::vector<TensorFixture> MakeRandomTensors(uint64_t seed, size_t count,
                                             uint64_t max_elements = 4096);

// SmallManifest(): model info filled with plausible values, to check that
// manifest fields survive a round trip.
format::Manifest SmallManifest();

// WriteContainer(): writes `tensors` in order with ContainerWriter and
// finishes it with `manifest`.
absl::Status WriteContainer(const std::string& path, const std::vector<TensorFixture>& tensors,
                            const format::WriterOptions& options,
                            const format::Manifest& manifest = SmallManifest());

// WriteSmallContainer(): a small valid container (two tensors of every dtype)
// at `path`; returns what was written.
absl::StatusOr<std::vector<TensorFixture>> WriteSmallContainer(
    const std::string& path, uint64_t seed, const format::WriterOptions& options = {});

// ReadFileBytes() / WriteFileBytes(): a whole file.
absl::StatusOr<std::vector<uint8_t>> ReadFileBytes(const std::string& path);
absl::Status WriteFileBytes(const std::string& path, const std::vector<uint8_t>& bytes);

// ScopedTempDir: a fresh folder under `parent` (default: $TEST_TMPDIR, then
// $TMPDIR, then /tmp), removed with everything in it on destruction.
class ScopedTempDir {
 public:
  explicit ScopedTempDir(const std::string& parent = "");
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;
  ~ScopedTempDir();

  const std::string& path() const { return path_; }
  // path() + "/" + name.
  std::string File(const std::string& name) const;
  // Names of the entries in the folder, sorted.
  std::vector<std::string> List() const;

 private:
  std::string path_;
};

// HandMadeContainer: the parts of a container assembled without the writer,
// so that tests can break exactly one rule. Assemble() lays the parts out as
// the writer would (data region at `header.data_offset`, manifest right after
// it) and fills in every size, offset and checksum; the hooks then break what
// a case needs.
struct HandMadeContainer {
  // Magic, versions, features, alignment and reserved bytes are taken from
  // here; sizes, offsets and checksums are computed.
  format::ContainerHeader header = format::NewHeader();
  format::Manifest manifest;
  // The data region, a multiple of the alignment.
  std::vector<uint8_t> data;
  bool compress_manifest = false;
  // When set, stored as the decoded manifest instead of serializing `manifest`.
  std::optional<std::string> raw_manifest;
  // Edits the stored (possibly compressed) manifest before its checksum.
  std::function<void(std::string& stored)> edit_stored_manifest;
  // Edits the header after every field is computed, before encoding (which
  // recomputes the header checksum).
  std::function<void(format::ContainerHeader& header)> edit_header;
  // Edits the finished bytes (checksums are NOT recomputed).
  std::function<void(std::vector<uint8_t>& file)> edit_file;
};

// ValidHandMadeContainer(): a small valid container (alignment 4 KiB, data at
// 4 KiB) with four tensors: "embed" f32 [4, 1024] (16 KiB, layer -1),
// "blk.0.q" q4_0 [8, 64] (layer 0), "blk.0.k" f16 [4, 32] (layer 0) and
// "blk.1.ffn" q4_k [2, 256] (layer 1), each with random data and its checksum.
HandMadeContainer ValidHandMadeContainer(uint64_t seed = 1);

// ManifestBomb(): ValidHandMadeContainer() whose zstd-compressed manifest
// also carries `padding` zero bytes in a field no reader knows (field 15): a
// few KB on disk that decode to more than `padding` bytes, within the 1 GiB
// decoded-size limit, as a decompression bomb would.
HandMadeContainer ManifestBomb(size_t padding);

// Assemble(): the bytes of `parts` (see HandMadeContainer).
std::vector<uint8_t> Assemble(const HandMadeContainer& parts);

// A deliberately broken container and what the reader must say about it.
struct BrokenContainerCase {
  std::string name;  // unique, usable as a test-parameter name
  // The rule it breaks: "magic", "version", "required_features", "reserved",
  // "header_checksum", "manifest_parse", "tensor_bounds", "alignment",
  // "overlap", "order", "shape_overflow", "nbytes", "layout", "duplicate_name",
  // "tensor_limit", "manifest_limit", "zstd_size", ...
  std::string check;
  std::vector<uint8_t> bytes;
  absl::StatusCode expected;
  // A fragment of the reader's message that shows the targeted check fired.
  std::string message_fragment;
  // The limits to open it with (most cases: the defaults).
  format::ReaderLimits limits;
};

// MakeBrokenContainers(): the table. Every case differs from a valid
// container in one rule only, with every checksum it does not target correct,
// so that it reaches the check it targets.
std::vector<BrokenContainerCase> MakeBrokenContainers();

}  // namespace zcpack::testing

#endif  // ZCPACK_TESTS_TESTING_CONTAINER_FIXTURES_H_

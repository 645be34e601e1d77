// Tests of the shared structural rules (zcpack/format/structural_rules.h):
// the reader's first problem is the first problem of the list-all mode, with
// the same words; every tensor problem is listed; the rule table is
// well-formed; a manifest that decodes to more than the file can legitimately
// hold is refused before it is decoded.
#include "zcpack/format/structural_rules.h"

#include <cstring>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "absl/strings/str_cat.h"
#include "tests/testing/container_fixtures.h"
#include "zcpack/format/container_reader.h"
#include "zcpack/format/coding.h"
#include "zcpack/format/container_writer.h"
#include "zcpack/format/format_constants.h"

namespace zcpack::format {
namespace {

using ::testing::HasSubstr;

ReadAtFn BufferReader(std::span<const uint8_t> bytes) {
  return [bytes](uint64_t offset, std::span<uint8_t> dst) {
    if (!ByteRangeInBounds(offset, dst.size(), bytes.size())) {
      return absl::OutOfRangeError("read past the end");
    }
    if (!dst.empty()) std::memcpy(dst.data(), bytes.data() + offset, dst.size());
    return absl::OkStatus();
  };
}

std::vector<Problem> ListProblems(std::span<const uint8_t> bytes, const ReaderLimits& limits = {}) {
  ProblemList list;
  const auto checked = CheckContainer(BufferReader(bytes), bytes.size(), limits, list);
  EXPECT_TRUE(checked.ok()) << checked.status();
  return list.problems();
}

TEST(StructuralRulesTest, NamesAreUniqueAndCoverTheBrokenContainerTable) {
  std::set<absl::string_view> names;
  for (const RuleInfo& rule : StructuralRules()) {
    EXPECT_TRUE(names.insert(rule.name).second) << rule.name;
    EXPECT_THAT((std::set<absl::string_view>{"header", "manifest", "tensor_table", "model"}),
                ::testing::Contains(rule.group))
        << rule.name;
  }
  for (const auto& c : testing::MakeBrokenContainers()) {
    EXPECT_TRUE(names.contains(c.check)) << c.name;
  }
}

class SharedRulesTest : public ::testing::TestWithParam<testing::BrokenContainerCase> {};

// The reader stops at the first problem of the list, and says it in the same
// words with the same code: the reader and `zcpack verify` cannot disagree.
TEST_P(SharedRulesTest, ReaderReturnsTheFirstListedProblem) {
  const testing::BrokenContainerCase& c = GetParam();
  const std::vector<Problem> problems = ListProblems(c.bytes, c.limits);
  ASSERT_FALSE(problems.empty());
  EXPECT_EQ(problems.front().check, c.check);
  ReaderOptions options;
  options.limits = c.limits;
  const auto opened = Container::OpenBuffer(c.bytes, c.name, options);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status(), ProblemStatus(problems.front(), c.name));
  EXPECT_EQ(opened.status().code(), c.expected);
}

INSTANTIATE_TEST_SUITE_P(Table, SharedRulesTest,
                         ::testing::ValuesIn(testing::MakeBrokenContainers()),
                         [](const auto& test_info) { return test_info.param.name; });

TEST(SharedRulesTest, ListsEveryBrokenTensorWhileTheReaderStopsAtTheFirst) {
  testing::HandMadeContainer parts = testing::ValidHandMadeContainer();
  parts.manifest.mutable_tensors(1)->set_dtype(static_cast<DType>(99));
  parts.manifest.mutable_tensors(3)->set_nbytes(7);
  const std::vector<uint8_t> bytes = testing::Assemble(parts);
  const std::vector<Problem> problems = ListProblems(bytes);
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_EQ(problems[0].check, "dtype");
  EXPECT_EQ(problems[0].tensor, "blk.0.q");
  EXPECT_EQ(problems[0].tensor_index, 1);
  EXPECT_EQ(problems[1].check, "nbytes");
  EXPECT_EQ(problems[1].tensor, "blk.1.ffn");

  FirstProblem first;
  ASSERT_TRUE(CheckContainer(BufferReader(bytes), bytes.size(), {}, first).ok());
  ASSERT_TRUE(first.found());
  EXPECT_EQ(first.problem()->check, "dtype");
  EXPECT_EQ(first.Status("f.zcpack").message(),
            "f.zcpack: tensor #1 'blk.0.q': unknown dtype 99");
}

// The layout rule (format::TensorLayoutProblem()) is one of the shared
// per-tensor rules: verify lists it for every row-grouped tensor of a file
// without the feature bit, after "nbytes", and the reader refuses the first.
TEST(SharedRulesTest, LayoutIsListedPerTensorAndTheReaderStopsAtTheFirst) {
  testing::HandMadeContainer parts = testing::ValidHandMadeContainer();
  parts.manifest.mutable_tensors(1)->set_layout(LAYOUT_ROW_GROUPS_16);  // blk.0.q, q4_0
  parts.manifest.mutable_tensors(2)->set_layout(LAYOUT_ROW_GROUPS_16);  // blk.0.k, f16
  parts.manifest.mutable_tensors(3)->set_layout(LAYOUT_ROW_GROUPS_16);  // blk.1.ffn, q4_k
  parts.manifest.mutable_tensors(3)->set_nbytes(7);
  const std::vector<uint8_t> bytes = testing::Assemble(parts);
  const std::vector<Problem> problems = ListProblems(bytes);
  ASSERT_EQ(problems.size(), 3u);
  EXPECT_EQ(problems[0].check, "layout");
  EXPECT_EQ(problems[0].tensor, "blk.0.q");
  EXPECT_THAT(problems[0].detail, HasSubstr("does not set the row_groups required feature"));
  EXPECT_EQ(problems[1].check, "layout");
  EXPECT_EQ(problems[1].tensor, "blk.0.k");
  EXPECT_THAT(problems[1].detail, HasSubstr("needs a q4_0, q8_0 or q4_k tensor, not f16"));
  // A tensor whose size is wrong is reported for that alone: the layout rule
  // needs a well-sized tensor.
  EXPECT_EQ(problems[2].check, "nbytes");
  EXPECT_EQ(problems[2].tensor, "blk.1.ffn");

  const auto opened = Container::OpenBuffer(bytes, "f.zcpack", {});
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status(), ProblemStatus(problems[0], "f.zcpack"));
}

// ------------------------------------------------- decompression bombs ---

TEST(ManifestBombTest, IsRefusedBeforeDecodingNamingTheFile) {
  const std::vector<uint8_t> bytes = testing::Assemble(testing::ManifestBomb(size_t{64} << 20));
  ASSERT_LT(bytes.size(), 64u << 10);  // a small file ...
  const auto opened = Container::OpenBuffer(bytes, "bomb.zcpack");
  ASSERT_FALSE(opened.ok());  // ... whose manifest is within the 1 GiB limit
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(opened.status().message(), HasSubstr("bomb.zcpack: manifest decodes to 67"));
  EXPECT_THAT(opened.status().message(), HasSubstr("refused before decoding"));
  const std::vector<Problem> problems = ListProblems(bytes);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].check, "manifest_limit");
  EXPECT_EQ(problems[0].offset, kOffManifestRawSize);
}

TEST(ManifestBombTest, BoundGrowsWithTheDataRegionAndKeepsTheLimit) {
  ContainerHeader h = NewHeader();
  h.alignment_log2 = 12;
  h.manifest_size = 1000;
  h.data_size = 0;
  const ReaderLimits limits;
  const uint64_t empty = MaxManifestRawBytes(h, limits);
  h.data_size = 4096 * 10;
  EXPECT_EQ(MaxManifestRawBytes(h, limits), empty + 10 * (limits.max_name_bytes + 512));
  h.data_size = uint64_t{1} << 62;
  h.manifest_size = UINT64_MAX;
  EXPECT_EQ(MaxManifestRawBytes(h, limits), limits.max_manifest_raw_bytes);
}

// The bound admits every manifest a writer can make: here 300 names of the
// longest length allowed (1.2 MB, more than the fixed allowance), one tensor
// per alignment unit, and an incompressible tokenizer.
TEST(ManifestBombTest, LongestNamesInTheSmallestTensorsStillOpen) {
  testing::ScopedTempDir dir;
  const std::string path = dir.File("long-names.zcpack");
  std::vector<testing::TensorFixture> tensors = testing::MakeRandomTensors(3, 300, 256);
  for (size_t i = 0; i < tensors.size(); ++i) {
    tensors[i].plan.name = std::string(ReaderLimits{}.max_name_bytes - 8, 'n') +
                           absl::StrCat(i + 10000000);
  }
  Manifest manifest = testing::SmallManifest();
  TokenizerBlob* blob = manifest.add_tokenizers();
  blob->set_kind("tokenizer.json");
  std::mt19937_64 rng(9);
  const std::vector<uint8_t> noise = testing::RandomBytes(300000, rng);
  blob->set_zstd_data(std::string(noise.begin(), noise.end()));
  WriterOptions options;
  options.alignment = 4096;
  ASSERT_TRUE(testing::WriteContainer(path, tensors, options, manifest).ok());
  const auto opened = Container::Open(path);
  EXPECT_TRUE(opened.ok()) << opened.status();
}

}  // namespace
}  // namespace zcpack::format

// LAYOUT_ROW_GROUPS_16: the one rule set for layouts (TensorLayoutProblem),
// the conversions both ways, and row-grouped tensors through the writer and
// the reader.
#include "zcpack/format/row_groups.h"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/container_fixtures.h"
#include "zcpack/format/container_reader.h"
#include "zcpack/format/container_writer.h"
#include "zcpack/format/dtype.h"
#include "zcpack/format/format_constants.h"

namespace zcpack::format {
namespace {

using ::testing::HasSubstr;
using testing::ScopedTempDir;
using testing::TensorFixture;

TensorEntry Entry(DType dtype, std::vector<uint64_t> shape, TensorLayout layout) {
  TensorEntry e;
  e.set_name("t");
  e.set_dtype(dtype);
  for (uint64_t d : shape) e.add_shape(d);
  e.set_layout(layout);
  return e;
}

TEST(TensorLayoutProblem, RowMajorIsAlwaysValid) {
  for (DType dtype : testing::kAllDTypes) {
    EXPECT_EQ(TensorLayoutProblem(Entry(dtype, {256}, LAYOUT_ROW_MAJOR), 0), "");
    EXPECT_EQ(TensorLayoutProblem(Entry(dtype, {2, 3, 256}, LAYOUT_ROW_MAJOR), 0), "");
  }
}

TEST(TensorLayoutProblem, RowGroupsOnQuantizedMatricesWithTheFeatureBit) {
  for (DType dtype : {DTYPE_Q4_0, DTYPE_Q8_0, DTYPE_Q4_K}) {
    EXPECT_EQ(TensorLayoutProblem(Entry(dtype, {40, 512}, LAYOUT_ROW_GROUPS_16), kFeatureRowGroups),
              "")
        << DTypeName(dtype);
  }
}

TEST(TensorLayoutProblem, RowGroupsOnFloatTypesAreRefused) {
  for (DType dtype : {DTYPE_F32, DTYPE_F16, DTYPE_BF16}) {
    EXPECT_THAT(
        TensorLayoutProblem(Entry(dtype, {16, 64}, LAYOUT_ROW_GROUPS_16), kFeatureRowGroups),
        HasSubstr(absl::StrCat("not ", DTypeName(dtype))));
  }
}

TEST(TensorLayoutProblem, RowGroupsOnAnythingButAMatrixAreRefused) {
  EXPECT_THAT(TensorLayoutProblem(Entry(DTYPE_Q4_0, {512}, LAYOUT_ROW_GROUPS_16), kFeatureRowGroups),
              HasSubstr("needs a matrix (rank 2), not shape [512]"));
  EXPECT_THAT(
      TensorLayoutProblem(Entry(DTYPE_Q4_0, {2, 16, 64}, LAYOUT_ROW_GROUPS_16), kFeatureRowGroups),
      HasSubstr("needs a matrix"));
}

TEST(TensorLayoutProblem, RowGroupsWithoutTheFeatureBitAreRefused) {
  EXPECT_THAT(TensorLayoutProblem(Entry(DTYPE_Q4_0, {16, 64}, LAYOUT_ROW_GROUPS_16),
                                  kFeatureZstdManifest),
              HasSubstr("does not set the row_groups required feature"));
}

TEST(TensorLayoutProblem, UnknownLayoutValuesAreRefused) {
  EXPECT_EQ(TensorLayoutProblem(Entry(DTYPE_Q4_0, {16, 64}, static_cast<TensorLayout>(2)),
                                kFeatureRowGroups),
            "unknown layout 2");
}

TEST(LayoutNames, ParseInvertsLayoutName) {
  for (TensorLayout layout : {LAYOUT_ROW_MAJOR, LAYOUT_ROW_GROUPS_16}) {
    EXPECT_EQ(*ParseLayout(LayoutName(layout)), layout);
  }
  EXPECT_EQ(*ParseLayout("ROW_GROUPS"), LAYOUT_ROW_GROUPS_16);
  const auto bad = ParseLayout("columns");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("expected row-groups or row-major"));
}

// The levels this CPU runs (the SIMD rearrangements are checked against the
// same expectations as the scalar one).
std::vector<SimdLevel> Levels() {
  std::vector<SimdLevel> levels;
  for (int l = 0; l <= static_cast<int>(DetectSimdLevel()); ++l) {
    levels.push_back(static_cast<SimdLevel>(l));
  }
  return levels;
}

// Every byte moves, every byte comes back, and each row read through
// CopyRowMajorRow() is the row-major row; rows % 16 != 0 leaves a tail.
TEST(RowGroupConversion, RoundTripsAndRowsReadBack) {
  std::mt19937_64 rng(7);
  for (DType dtype : {DTYPE_Q4_0, DTYPE_Q8_0, DTYPE_Q4_K}) {
    for (uint64_t rows : {1u, 15u, 16u, 37u, 64u}) {
      const uint64_t row_bytes = 3 * BlockBytes(dtype);
      const std::vector<uint8_t> row_major = testing::RandomBytes(rows * row_bytes, rng);
      std::vector<uint8_t> grouped(row_major.size()), back(row_major.size());
      ToRowGroups(dtype, rows, row_bytes, row_major.data(), grouped.data());
      // Fewer than 16 rows are all tail, stored as they are.
      EXPECT_EQ(grouped == row_major, rows < kRowGroupRows) << DTypeName(dtype) << " " << rows;
      FromRowGroups(dtype, rows, row_bytes, grouped.data(), back.data());
      EXPECT_EQ(back, row_major) << DTypeName(dtype) << " " << rows;
      for (SimdLevel level : Levels()) {
        std::vector<uint8_t> at_level(row_major.size()), back_at_level(row_major.size());
        ToRowGroups(dtype, rows, row_bytes, row_major.data(), at_level.data(), level);
        EXPECT_EQ(at_level, grouped)
            << DTypeName(dtype) << " " << rows << " " << SimdLevelName(level);
        FromRowGroups(dtype, rows, row_bytes, grouped.data(), back_at_level.data(), level);
        EXPECT_EQ(back_at_level, row_major)
            << DTypeName(dtype) << " " << rows << " " << SimdLevelName(level);
      }
      std::vector<uint8_t> row(row_bytes);
      for (uint64_t r = 0; r < rows; ++r) {
        CopyRowMajorRow(dtype, LAYOUT_ROW_GROUPS_16, rows, row_bytes, grouped.data(), r, row.data());
        EXPECT_TRUE(std::equal(row.begin(), row.end(), row_major.begin() + r * row_bytes))
            << DTypeName(dtype) << " rows " << rows << " row " << r;
      }
    }
  }
}

// The byte formula of format/SPEC.md, "Row groups", spelled out once, for
// each block type (each has its own compiled rearrangement) and rows long
// enough that the rearrangement prefetches blocks ahead.
TEST(RowGroupConversion, MatchesTheSpecFormula) {
  for (DType dtype : {DTYPE_Q4_0, DTYPE_Q8_0, DTYPE_Q4_K}) {
    for (uint64_t nb : {2u, 11u}) {
      const uint64_t B = BlockBytes(dtype), P = RowGroupPrefixBytes(dtype);
      const uint64_t rows = 20, row_bytes = nb * B;
      std::vector<uint8_t> row_major(rows * row_bytes);
      for (size_t i = 0; i < row_major.size(); ++i) row_major[i] = static_cast<uint8_t>(i * 7 + 1);
      for (SimdLevel level : Levels()) {
        std::vector<uint8_t> grouped(row_major.size());
        ToRowGroups(dtype, rows, row_bytes, row_major.data(), grouped.data(), level);
        for (uint64_t r = 0; r < 16; ++r) {
          for (uint64_t b = 0; b < nb; ++b) {
            for (uint64_t i = 0; i < B; ++i) {
              const uint64_t at = b * 16 * B + (i < P ? r * P + i
                                                      : 16 * P + ((i - P) / 4 * 16 + r) * 4 +
                                                            (i - P) % 4);
              ASSERT_EQ(grouped[at], row_major[r * row_bytes + b * B + i])
                  << DTypeName(dtype) << " blocks " << nb << ": row " << r << " block " << b
                  << " byte " << i << " at " << SimdLevelName(level);
            }
          }
        }
        for (uint64_t j = 16 * row_bytes; j < rows * row_bytes; ++j) {
          ASSERT_EQ(grouped[j], row_major[j]) << DTypeName(dtype) << " blocks " << nb;
        }
      }
    }
  }
}

// A q4_0 and a q4_k matrix in row groups beside row-major tensors: the writer
// records the layouts and sets the feature bit, the reader gives the bytes
// back as written.
TEST(RowGroupContainer, WritesAndReadsBack) {
  ScopedTempDir dir(::testing::TempDir());
  const std::string path = dir.File("grouped.zcp");
  std::mt19937_64 rng(3);
  std::vector<TensorFixture> tensors(3);
  tensors[0].plan = {"embed", ROLE_TOKEN_EMBEDDING, -1, DTYPE_F16, {8, 64}, DTYPE_F32};
  tensors[1].plan = {"blk.0.q", ROLE_ATTN_Q, 0, DTYPE_Q4_0, {40, 64}, DTYPE_F32,
                     LAYOUT_ROW_GROUPS_16};
  tensors[2].plan = {"output", ROLE_OUTPUT, -1, DTYPE_Q4_K, {17, 256}, DTYPE_F32,
                     LAYOUT_ROW_GROUPS_16};
  for (TensorFixture& t : tensors) {
    t.bytes = testing::RandomBytes(*TensorByteSize(t.plan.dtype, t.plan.shape), rng);
  }
  ASSERT_TRUE(testing::WriteContainer(path, tensors, WriterOptions{}).ok());

  ReaderOptions options;
  options.verify_checksums = true;
  auto opened = Container::Open(path, options);
  ASSERT_TRUE(opened.ok()) << opened.status();
  const Container& c = **opened;
  EXPECT_EQ(c.header().required_features, kFeatureZstdManifest | kFeatureRowGroups);
  for (size_t i = 0; i < tensors.size(); ++i) {
    EXPECT_EQ(c.tensor(i).layout(), tensors[i].plan.layout) << i;
    const auto data = c.TensorData(i);
    EXPECT_TRUE(std::equal(data.begin(), data.end(), tensors[i].bytes.begin())) << i;
  }
}

TEST(RowGroupContainer, RowMajorOnlyLeavesTheFeatureBitClear) {
  ScopedTempDir dir(::testing::TempDir());
  const std::string path = dir.File("plain.zcp");
  ASSERT_TRUE(testing::WriteSmallContainer(path, 5).ok());
  auto opened = Container::Open(path);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ((*opened)->header().required_features & kFeatureRowGroups, 0u);
}

TEST(RowGroupContainer, WriterRefusesAnInvalidLayout) {
  ScopedTempDir dir(::testing::TempDir());
  const std::string path = dir.File("bad.zcp");
  std::vector<TensorPlan> plans = {
      {"blk.0.k", ROLE_ATTN_K, 0, DTYPE_F16, {16, 64}, DTYPE_F32, LAYOUT_ROW_GROUPS_16}};
  auto writer = ContainerWriter::Create(path, plans, WriterOptions{});
  EXPECT_EQ(writer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(writer.status().message(), HasSubstr("'blk.0.k'"));
  EXPECT_THAT(writer.status().message(), HasSubstr("not f16"));
  EXPECT_TRUE(dir.List().empty());

  plans = {{"norm", ROLE_ATTN_NORM, 0, DTYPE_Q8_0, {64}, DTYPE_F32, LAYOUT_ROW_GROUPS_16}};
  writer = ContainerWriter::Create(path, plans, WriterOptions{});
  EXPECT_EQ(writer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(writer.status().message(), HasSubstr("needs a matrix"));
}

}  // namespace
}  // namespace zcpack::format

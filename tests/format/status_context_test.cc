// The file and tensor an error is about travel in the status
// (zcpack/format/status_context.h): the innermost code that names them wins,
// and the reader's own failures carry them.
#include "zcpack/format/status_context.h"

#include <string>

#include "gtest/gtest.h"
#include "zcpack/format/container_reader.h"
#include "zcpack/format/posix_file.h"
#include "zcpack/format/problem.h"

namespace zcpack::format {
namespace {

TEST(StatusContextTest, TheFirstFileAndTensorNamedStay) {
  absl::Status s = AboutTensor(absl::DataLossError("bad"), "inner.gguf", "blk.0.attn_q.weight");
  s = WithFile(s, "outer.zcpack");
  s = WithTensor(s, "other");
  EXPECT_EQ(StatusFile(s), "inner.gguf");
  EXPECT_EQ(StatusTensor(s), "blk.0.attn_q.weight");
  EXPECT_EQ(s.message(), "bad");
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
}

TEST(StatusContextTest, NothingAttachedToOkOrForAnEmptyName) {
  EXPECT_TRUE(WithFile(absl::OkStatus(), "f").ok());
  EXPECT_FALSE(StatusFile(WithFile(absl::OkStatus(), "f")).has_value());
  const absl::Status s = WithTensor(absl::InternalError("x"), "");
  EXPECT_FALSE(StatusTensor(s).has_value());
  EXPECT_FALSE(StatusFile(s).has_value());
}

// Names are bytes: kept as given, not escaped (the JSON writer escapes).
TEST(StatusContextTest, KeepsBytesThatAreNotUtf8) {
  const absl::Status s = AboutTensor(absl::DataLossError("x"), "b\xff.zcpack", "t\xfe");
  EXPECT_EQ(StatusFile(s), "b\xff.zcpack");
  EXPECT_EQ(StatusTensor(s), "t\xfe");
}

TEST(StatusContextTest, WithMessageKeepsCodeAndPayloads) {
  const absl::Status inner = AboutTensor(absl::DataLossError("bad"), "src.gguf", "t");
  const absl::Status outer = WithMessage(inner, "--against src.gguf: bad");
  EXPECT_EQ(outer.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(outer.message(), "--against src.gguf: bad");
  EXPECT_EQ(StatusFile(outer), "src.gguf");
  EXPECT_EQ(StatusTensor(outer), "t");
  EXPECT_TRUE(WithMessage(absl::OkStatus(), "x").ok());
}

TEST(StatusContextTest, ErrnoErrorNamesItsPath) {
  const absl::Status s = ErrnoError(ENOENT, "/no/such/file", "open");
  EXPECT_EQ(StatusFile(s), "/no/such/file");
  EXPECT_FALSE(StatusTensor(s).has_value());
}

TEST(StatusContextTest, ProblemStatusNamesFileAndTensor) {
  Problem p;
  p.check = "nbytes";
  p.tensor = "output.weight";
  p.tensor_index = 3;
  p.detail = "nbytes is 7";
  const absl::Status s = ProblemStatus(p, "m.zcpack");
  EXPECT_EQ(StatusFile(s), "m.zcpack");
  EXPECT_EQ(StatusTensor(s), "output.weight");
}

TEST(StatusContextTest, ContainerOpenNamesTheFileItCouldNotRead) {
  const std::string path = ::testing::TempDir() + "/status_context_missing.zcpack";
  const auto missing = Container::Open(path);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(StatusFile(missing.status()), path);
}

}  // namespace
}  // namespace zcpack::format

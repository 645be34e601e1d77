// The CLI's output plumbing without running the program: JSON reports that
// quote bytes that are not UTF-8, and exceptions turned into statuses.
#include <new>
#include <stdexcept>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tools/cli/exit_codes.h"
#include "tools/cli/json_output.h"
#include "tools/cli/terminal_text.h"
#include "zcpack/format/status_context.h"

namespace zcpack::cli {
namespace {

using ::testing::HasSubstr;

TEST(JsonTextTest, EscapesStringsAndKeysThatAreNotUtf8) {
  nlohmann::json report = {{"path", "b\xff.zcpack"},
                           {"files", {"ok", "m\xfe/config.json"}},
                           {"nested", {{"name\xc3", {{"detail", "caf\xc3\xa9 \xe2\x82"}}}}},
                           {"count", 3}};
  // What used to happen: dump() throws, and nothing caught it.
  EXPECT_THROW(report.dump(), nlohmann::json::type_error);
  std::string text;
  ASSERT_NO_THROW(text = JsonText(report));
  const nlohmann::json back = nlohmann::json::parse(text);
  EXPECT_EQ(back["path"], "b\\xff.zcpack");
  EXPECT_EQ(back["files"][1], "m\\xfe/config.json");
  EXPECT_EQ(back["nested"]["name\\xc3"]["detail"], "caf\xc3\xa9 \\xe2\\x82");
  EXPECT_EQ(back["count"], 3);
}

TEST(JsonTextTest, LeavesValidTextAlone) {
  const nlohmann::json report = {{"name", "caf\xc3\xa9"}, {"ids", {1, 2}}};
  EXPECT_EQ(JsonText(report), report.dump(2));
  EXPECT_EQ(JsonText(report, -1), report.dump());
}

TEST(ReportTextTest, StartsWithTheSchemaVersionAndTheCommand) {
  const nlohmann::json report = {{"alpha", 1}, {"input", "m.zcpack"}};
  const std::string text = ReportText("inspect", report, -1);
  EXPECT_EQ(text.rfind("{\"schema_version\":1,\"command\":\"inspect\",", 0), 0u) << text;
  const nlohmann::json back = nlohmann::json::parse(text);
  EXPECT_EQ(back["alpha"], 1);
  EXPECT_EQ(back["input"], "m.zcpack");
}

// The error object takes the file and tensor the status carries; without
// them, the command's input and no tensor.
TEST(ErrorJsonTest, UsesTheStatusPayloadsThenTheInput) {
  const absl::Status about = format::AboutTensor(absl::DataLossError("bad block"), "src.gguf",
                                                 "blk.0.attn_q.weight");
  nlohmann::json e = ErrorJson(about, ExitCodeFor(about), "model.zcpack");
  EXPECT_EQ(e["code"], "input_rejected");
  EXPECT_EQ(e["exit_code"], 1);
  EXPECT_EQ(e["status"], "DATA_LOSS");
  EXPECT_EQ(e["file"], "src.gguf");
  EXPECT_EQ(e["tensor"], "blk.0.attn_q.weight");
  EXPECT_EQ(e["message"], "bad block");

  e = ErrorJson(absl::NotFoundError("gone"), kExitIoError, "model.zcpack");
  EXPECT_EQ(e["code"], "system");
  EXPECT_EQ(e["file"], "model.zcpack");
  EXPECT_TRUE(e["tensor"].is_null());

  e = ErrorJson(absl::InvalidArgumentError("unknown flag"), kExitUsage, "");
  EXPECT_EQ(e["code"], "usage");
  EXPECT_TRUE(e["file"].is_null());
}

TEST(ErrorJsonTest, ReportedMarksAStatusWithoutChangingIt) {
  const absl::Status s = absl::DataLossError("x");
  EXPECT_FALSE(Reported(s));
  const absl::Status marked = MarkReported(s);
  EXPECT_TRUE(Reported(marked));
  EXPECT_EQ(marked.code(), s.code());
  EXPECT_EQ(marked.message(), s.message());
  EXPECT_TRUE(MarkReported(absl::OkStatus()).ok());
}

TEST(WrapTextTest, BreaksAtSpacesWithAHangingIndent) {
  EXPECT_EQ(WrapText("one two three four", 12, "- ", "  "), "- one two\n  three four\n");
  // A word longer than the line stays whole.
  EXPECT_EQ(WrapText("a abcdefghijklmnop b", 10, "", ""), "a\nabcdefghijklmnop\nb\n");
  // Characters, not bytes: "cafe" with an accent is 4 columns.
  EXPECT_EQ(WrapText("caf\xc3\xa9 caf\xc3\xa9", 9, "", ""), "caf\xc3\xa9 caf\xc3\xa9\n");
  EXPECT_EQ(WrapText("a  b", 80, "", ""), "a b\n");
}

// main() runs every command through StatusOfCall(): no exception reaches
// std::terminate; each becomes one stderr line and exit code 3.
TEST(StatusOfCallTest, ExceptionsBecomeStatusesWithExitCodeThree) {
  const absl::Status json_error = StatusOfCall([]() -> absl::Status {
    return absl::InternalError(nlohmann::json("b\xff").dump());
  });
  EXPECT_EQ(json_error.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(json_error.message(), HasSubstr("internal error: [json.exception.type_error.316]"));
  EXPECT_EQ(ExitCodeFor(json_error), kExitIoError);

  const absl::Status oom = StatusOfCall([]() -> absl::Status { throw std::bad_alloc(); });
  EXPECT_EQ(oom.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ExitCodeFor(oom), kExitIoError);

  const absl::Status other = StatusOfCall([]() -> absl::Status { throw 42; });
  EXPECT_EQ(other.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(ExitCodeFor(other), kExitIoError);

  EXPECT_TRUE(StatusOfCall([] { return absl::OkStatus(); }).ok());
  EXPECT_EQ(StatusOfCall([] { return absl::InvalidArgumentError("x"); }).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace zcpack::cli

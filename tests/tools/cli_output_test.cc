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

// The CLI's byte counts, durations, progress line and wrapping, without
// running the program.
#include <string>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/cli/manual.h"
#include "tools/cli/progress.h"
#include "tools/cli/terminal.h"
#include "tools/cli/units.h"

namespace zcpack::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

TEST(ParseByteSizeTest, AcceptsSuffixes) {
  EXPECT_EQ(*ParseByteSize("16384"), 16384u);
  EXPECT_EQ(*ParseByteSize("16K"), 16384u);
  EXPECT_EQ(*ParseByteSize("16k"), 16384u);
  EXPECT_EQ(*ParseByteSize("2M"), 2097152u);
  EXPECT_EQ(*ParseByteSize("2MiB"), 2097152u);
  EXPECT_EQ(*ParseByteSize("1.5K"), 1536u);
  EXPECT_EQ(*ParseByteSize("20GiB"), uint64_t{20} << 30);
  EXPECT_EQ(*ParseByteSize("1T"), uint64_t{1} << 40);
}

TEST(ParseByteSizeTest, RefusesWhatIsNoByteCount) {
  for (const char* bad : {"", "K", "-1", "16Q", "1.5", "0.3K", "9999999T", "12 parsecs"}) {
    EXPECT_FALSE(ParseByteSize(bad).ok()) << bad;
  }
}

TEST(ByteCountFlagTest, ParsesAndUnparses) {
  ByteCount count;
  std::string error;
  EXPECT_TRUE(AbslParseFlag("64K", &count, &error));
  EXPECT_EQ(count.bytes, 65536u);
  EXPECT_EQ(AbslUnparseFlag(count), "65536");
  EXPECT_FALSE(AbslParseFlag("64X", &count, &error));
  EXPECT_THAT(error, HasSubstr("unknown unit"));
}

TEST(FormatTest, BytesAndDurations) {
  EXPECT_EQ(FormatBytes(12), "12 B");
  EXPECT_EQ(FormatBytes(17408), "17.00 KiB");
  EXPECT_EQ(FormatBytes(uint64_t{812} << 20), "812 MiB");
  EXPECT_EQ(FormatDuration(7.2), "7s");
  EXPECT_EQ(FormatDuration(65), "1m05s");
  EXPECT_EQ(FormatDuration(7380), "2h03m");
  EXPECT_EQ(FormatDuration(-1), "?");
}

ProgressState Halfway() {
  return {"convert", uint64_t{24} << 20, uint64_t{48} << 20, 30, 57, "tensors", 2.0};
}

TEST(ProgressLineTest, NeverReachesTheWidth) {
  for (int columns = 1; columns <= 200; ++columns) {
    const std::string line = FormatProgressLine(Halfway(), columns);
    EXPECT_LE(line.size(), static_cast<size_t>(std::max(columns - 1, 1))) << columns;
  }
}

TEST(ProgressLineTest, ShowsEverythingOnAWideTerminal) {
  const std::string line = FormatProgressLine(Halfway(), 120);
  EXPECT_THAT(line, StartsWith("convert  50% ["));
  EXPECT_THAT(line, HasSubstr("24.00 MiB/48.00 MiB"));
  EXPECT_THAT(line, HasSubstr("12.00 MiB/s"));
  EXPECT_THAT(line, HasSubstr("ETA 2s"));
  EXPECT_THAT(line, HasSubstr("30/57 tensors"));
}

TEST(ProgressLineTest, DropsTheLeastUsefulFirst) {
  // At 80 columns all still fits, with a short bar.
  const std::string at80 = FormatProgressLine(Halfway(), 80);
  EXPECT_THAT(at80, HasSubstr("ETA 2s"));
  EXPECT_THAT(at80, HasSubstr("MiB/s"));
  // Narrow: the label, the percentage and the ETA stay.
  const std::string at30 = FormatProgressLine(Halfway(), 30);
  EXPECT_THAT(at30, StartsWith("convert  50%"));
  EXPECT_THAT(at30, HasSubstr("ETA 2s"));
  EXPECT_THAT(at30, Not(HasSubstr("tensors")));
}

TEST(ProgressLineTest, UnknownEtaBeforeAnyThroughput) {
  ProgressState state = Halfway();
  state.bytes_done = 0;
  state.seconds = 0;
  EXPECT_THAT(FormatProgressLine(state, 120), HasSubstr("ETA ?"));
}

TEST(WrapToWidthTest, LeavesLinesThatFit) {
  EXPECT_EQ(WrapToWidth("short line\n  --flag  text\n", 40), "short line\n  --flag  text\n");
}

TEST(WrapToWidthTest, ContinuesUnderTheDescription) {
  const std::string wrapped =
      WrapToWidth("  --alignment  tensor alignment in bytes, a power of two from 4K to 2M", 40);
  const std::vector<std::string> lines = absl::StrSplit(wrapped, '\n');
  ASSERT_GE(lines.size(), 2u);
  for (const std::string& line : lines) EXPECT_LE(line.size(), 40u) << line;
  EXPECT_EQ(lines[0], "  --alignment  tensor alignment in");
  EXPECT_THAT(lines[1], StartsWith("               bytes, a power"));
}

TEST(WrapToWidthTest, RefillsABlockThatDoesNotFit) {
  const std::string text =
      "Prose that runs on\nover two lines.\n"
      "  --a  one two three four five six seven\n"
      "       eight nine\n"
      "  --b  fits\n";
  const std::string wrapped = WrapToWidth(text, 30);
  const std::vector<std::string> lines = absl::StrSplit(wrapped, '\n');
  EXPECT_THAT(lines, ElementsAre("Prose that runs on", "over two lines.",
                                 "  --a  one two three four five", "       six seven eight nine",
                                 "  --b  fits", ""));
}

TEST(WrapToWidthTest, CutsAWordLongerThanTheWidth) {
  const std::string wrapped = WrapToWidth(std::string(50, 'x') + " tail", 20);
  for (absl::string_view line : absl::StrSplit(wrapped, '\n')) EXPECT_LE(line.size(), 20u);
  EXPECT_THAT(wrapped, HasSubstr("tail"));
}

TEST(HelpFlagEntriesTest, ReadsTermsSpellingsAndContinuations) {
  const std::vector<HelpFlagEntry> entries = HelpFlagEntries(
      "Prose mentioning --not-a-flag.\n"
      "\n"
      "  --out, -o          output path\n"
      "  --quant            keep or q4_0\n"
      "                     continued\n"
      "  --max-a N, --max-b N,\n"
      "  --max-c N\n"
      "                     limits\n"
      "  TEXT               a positional\n");
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_THAT(entries[0].spellings, ElementsAre("--out", "-o"));
  EXPECT_EQ(entries[0].description, "output path");
  EXPECT_EQ(entries[1].description, "keep or q4_0 continued");
  EXPECT_THAT(entries[2].spellings, ElementsAre("--max-a", "--max-b", "--max-c"));
  EXPECT_EQ(entries[2].description, "limits");
}

}  // namespace
}  // namespace zcpack::cli

// Tests of validator::Verify(): the broken-container table, byte flips in
// every tensor of a converted model, padding, model checks, --against, the
// data access modes and the report formats.
#include "zcpack/validator/verify.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/converter/gguf_test_writer.h"
#include "tests/converter/safetensors_test_writer.h"
#include "tests/testing/container_fixtures.h"
#include "zcpack/converter/convert.h"
#include "zcpack/converter/source_model.h"
#include "zcpack/converter/synth.h"
#include "zcpack/format/dtype.h"
#include "zcpack/format/model_layout.h"
#include "zcpack/format/q4_blocks.h"
#include "zcpack/runtime/model.h"
#include "zstd.h"

namespace zcpack::validator {
namespace {

using ::testing::HasSubstr;
using testing::ScopedTempDir;

// The checks that failed, one entry per problem kept.
std::vector<std::string> ProblemChecks(const VerifyReport& r) {
  std::vector<std::string> checks;
  for (const Problem& p : r.problems) checks.push_back(p.check);
  return checks;
}

const CheckOutcome& Outcome(const VerifyReport& r, const std::string& name) {
  for (const CheckOutcome& c : r.checks) {
    if (c.name == name) return c;
  }
  ADD_FAILURE() << "no check " << name;
  return r.checks.front();
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

TEST(CheckNamesTest, AreUniqueAndCoverTheBrokenContainerTable) {
  const std::vector<std::string> names = AllCheckNames();
  const std::set<std::string> unique(names.begin(), names.end());
  EXPECT_EQ(unique.size(), names.size());
  for (const auto& c : testing::MakeBrokenContainers()) {
    EXPECT_TRUE(unique.contains(c.check)) << c.name << ": " << c.check;
  }
}

TEST(VerifyLevelTest, ParsesItsNames) {
  EXPECT_EQ(*ParseVerifyLevel("structure"), VerifyLevel::kStructure);
  EXPECT_EQ(*ParseVerifyLevel("FULL"), VerifyLevel::kFull);
  EXPECT_EQ(ParseVerifyLevel("quick").status().code(), absl::StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------- broken ---

class BrokenContainerTest : public ::testing::TestWithParam<testing::BrokenContainerCase> {};

TEST_P(BrokenContainerTest, FirstProblemIsTheBrokenRule) {
  const testing::BrokenContainerCase& c = GetParam();
  for (const VerifyLevel level : {VerifyLevel::kStructure, VerifyLevel::kFull}) {
    VerifyOptions options;
    options.level = level;
    options.limits = c.limits;
    const auto report = VerifyBuffer(c.bytes, c.name, options);
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_FALSE(report->sound());
    ASSERT_FALSE(report->problems.empty());
    // The header, manifest and table checks run in the reader's order, so the
    // rule the case breaks is the first one reported.
    EXPECT_EQ(report->problems.front().check, c.check) << FormatReportText(*report);
    EXPECT_EQ(Outcome(*report, c.check).result, CheckResult::kFail);
    // The reader agrees that the file is unsound.
    EXPECT_EQ(Outcome(*report, "reader").result, CheckResult::kSkipped);
  }
}

TEST_P(BrokenContainerTest, FileVerifiesLikeTheBuffer) {
  const testing::BrokenContainerCase& c = GetParam();
  ScopedTempDir dir;
  const std::string path = dir.File("broken.zcpack");
  ASSERT_TRUE(testing::WriteFileBytes(path, c.bytes).ok());
  VerifyOptions options;
  options.limits = c.limits;
  const auto from_file = Verify(path, options);
  ASSERT_TRUE(from_file.ok()) << from_file.status();
  const auto from_buffer = VerifyBuffer(c.bytes, path, options);
  ASSERT_TRUE(from_buffer.ok());
  EXPECT_EQ(ProblemChecks(*from_file), ProblemChecks(*from_buffer));
}

INSTANTIATE_TEST_SUITE_P(Table, BrokenContainerTest,
                         ::testing::ValuesIn(testing::MakeBrokenContainers()),
                         [](const auto& test_info) { return test_info.param.name; });

// Tokenizer blobs lie outside the manifest: the full level hashes them like
// tensors and scans the gaps around them as padding.
TEST(TokenizerBlobVerifyTest, FlippedBlobByteIsAChecksumProblemNamingTheBlob) {
  ScopedTempDir dir;
  const std::string path = dir.File("blob.zcpack");
  format::Manifest manifest = testing::SmallManifest();
  format::TokenizerBlob* blob = manifest.add_tokenizers();
  blob->set_kind("tokenizer.json");
  const std::string raw(5000, 'v');
  std::string frame(ZSTD_compressBound(raw.size()), '\0');
  frame.resize(ZSTD_compress(frame.data(), frame.size(), raw.data(), raw.size(), 3));
  blob->set_raw_size(raw.size());
  blob->set_zstd_data(frame);
  *manifest.add_tokenizers() = *blob;
  format::WriterOptions options;
  options.alignment = 4096;
  ASSERT_TRUE(
      testing::WriteContainer(path, testing::MakeRandomTensors(5, 4, 4096), options, manifest).ok());
  std::vector<uint8_t> bytes = *testing::ReadFileBytes(path);
  auto c = format::Container::OpenBuffer(bytes, "blob");
  ASSERT_TRUE(c.ok()) << c.status();
  const format::TokenizerBlob stored = (*c)->manifest().tokenizers(0);
  const format::TokenizerBlob second = (*c)->manifest().tokenizers(1);
  c->reset();
  // The tensors are not a model: only the integrity problems matter here.
  const auto integrity = [](std::span<const uint8_t> file) {
    VerifyReport r = *VerifyBuffer(file, "blob");
    std::erase_if(r.problems, [](const Problem& p) {
      return p.check != "checksum" && p.check != "padding";
    });
    return r;
  };
  EXPECT_TRUE(integrity(bytes).problems.empty());
  std::vector<uint8_t> flipped = bytes;
  flipped[stored.offset() + 3] ^= 1;
  const VerifyReport r = integrity(flipped);
  ASSERT_EQ(r.problems.size(), 1u) << FormatReportText(r);
  EXPECT_EQ(r.problems[0].check, "checksum");
  EXPECT_EQ(r.problems[0].offset, stored.offset());
  EXPECT_THAT(r.problems[0].detail, HasSubstr("tokenizer blob 0 (tokenizer.json)"));
  // A nonzero byte between the two blobs is padding.
  std::vector<uint8_t> dirty = bytes;
  const uint64_t gap = stored.offset() + stored.stored_size();
  ASSERT_LT(gap, second.offset());
  dirty[gap] = 7;
  const VerifyReport p = integrity(dirty);
  ASSERT_EQ(p.problems.size(), 1u) << FormatReportText(p);
  EXPECT_EQ(p.problems[0].check, "padding");
}

TEST(ShortFileTest, EmptyFileIsTruncatedAndTextIsNotAContainer) {
  const std::vector<uint8_t> empty;
  auto report = VerifyBuffer(empty, "empty");
  ASSERT_TRUE(report.ok());
  EXPECT_THAT(ProblemChecks(*report), ::testing::ElementsAre("file_size"));
  const std::string text = "hello";
  report = VerifyBuffer({reinterpret_cast<const uint8_t*>(text.data()), text.size()}, "text");
  ASSERT_TRUE(report.ok());
  EXPECT_THAT(ProblemChecks(*report), ::testing::ElementsAre("magic"));
}

TEST(MissingFileTest, IsNotFoundNotAReport) {
  ScopedTempDir dir;
  const auto report = Verify(dir.File("absent.zcpack"));
  EXPECT_EQ(report.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(report.status().message(), HasSubstr("absent.zcpack"));
}

// --------------------------------------------------- a converted model ---

// A tiny synthetic model (seed 1), the same shape with seed 2, and the q4_0
// container converted from the first; made once for the suite.
class ConvertedModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ScopedTempDir();
    for (const uint64_t seed : {1, 2}) {
      converter::SynthOptions synth;
      synth.shape = "tiny";
      synth.out_dir = dir_->File(seed == 1 ? "tiny" : "tiny-seed2");
      synth.seed = seed;
      ASSERT_TRUE(converter::Synthesize(synth).ok());
    }
    converter::ConvertOptions convert;
    convert.source = Source();
    convert.output = dir_->File("tiny.zcpack");
    ASSERT_TRUE(converter::Convert(convert).ok());
    bytes_ = new std::vector<uint8_t>(*testing::ReadFileBytes(Container()));
  }
  static void TearDownTestSuite() {
    delete bytes_;
    delete dir_;
  }

  static std::string Source() { return dir_->File("tiny"); }
  static std::string OtherSeed() { return dir_->File("tiny-seed2"); }
  static std::string Container() { return dir_->File("tiny.zcpack"); }
  static const std::vector<uint8_t>& Bytes() { return *bytes_; }

  // The container's tensor table, as the reader sees it.
  static std::vector<format::TensorEntry> Tensors() {
    auto c = format::Container::OpenBuffer(Bytes(), "tiny");
    EXPECT_TRUE(c.ok());
    std::vector<format::TensorEntry> out;
    for (size_t i = 0; i < (*c)->num_tensors(); ++i) out.push_back((*c)->tensor(i));
    return out;
  }

  static VerifyReport MustVerify(std::span<const uint8_t> bytes, const VerifyOptions& options = {}) {
    auto report = VerifyBuffer(bytes, "tiny", options);
    EXPECT_TRUE(report.ok()) << report.status();
    return report.ok() ? *std::move(report) : VerifyReport{};
  }

  // Writes a copy of the seed-1 source into a fresh folder: `edit` adds each
  // source tensor to the writer (Keep() copies it), changed, or drops it.
  static std::string WriteEditedSource(
      const std::string& name,
      const std::function<void(const converter::SourceTensor&, testing::SafetensorsTestWriter&)>&
          edit) {
    const std::string out = dir_->File(name);
    std::filesystem::create_directories(out);
    WriteText(out + "/config.json", ReadText(Source() + "/config.json"));
    auto source = converter::OpenSourceModel(Source());
    EXPECT_TRUE(source.ok()) << source.status();
    testing::SafetensorsTestWriter writer;
    for (const converter::SourceTensor& t : (*source)->tensors) edit(t, writer);
    EXPECT_TRUE(testing::WriteFileBytes(out + "/model.safetensors", writer.Build()).ok());
    return out;
  }

  static void Keep(const converter::SourceTensor& t, testing::SafetensorsTestWriter& w) {
    w.AddTensor(t.name, testing::SafetensorsDTypeName(t.dtype), t.shape,
                std::vector<uint8_t>(t.data.begin(), t.data.end()));
  }

  // Converts Source() with `convert` (source set here) and verifies the
  // result against it at the full level.
  static VerifyReport ConvertAndVerifyAgainstSource(converter::ConvertOptions convert) {
    convert.source = Source();
    EXPECT_TRUE(converter::Convert(convert).ok());
    VerifyOptions options;
    options.against = Source();
    auto report = Verify(convert.output, options);
    EXPECT_TRUE(report.ok()) << report.status();
    return report.ok() ? *std::move(report) : VerifyReport{};
  }

  // The container verified against `source` at the full level.
  static VerifyReport VerifyAgainst(const std::string& source, VerifyOptions options = {}) {
    options.against = source;
    auto report = Verify(Container(), options);
    EXPECT_TRUE(report.ok()) << report.status();
    return report.ok() ? *std::move(report) : VerifyReport{};
  }

  static ScopedTempDir* dir_;
  static std::vector<uint8_t>* bytes_;
};

ScopedTempDir* ConvertedModelTest::dir_ = nullptr;
std::vector<uint8_t>* ConvertedModelTest::bytes_ = nullptr;

TEST_F(ConvertedModelTest, IsSoundAtEveryLevel) {
  for (const VerifyLevel level : {VerifyLevel::kStructure, VerifyLevel::kFull}) {
    VerifyOptions options;
    options.level = level;
    const VerifyReport r = MustVerify(Bytes(), options);
    EXPECT_TRUE(r.sound()) << FormatReportText(r);
    for (const CheckOutcome& c : r.checks) {
      const bool runs = c.group != "source" && c.group != "inference" &&
                        (c.group != "integrity" || level == VerifyLevel::kFull);
      // The manifest of a converted model is zstd-compressed, so every check applies.
      EXPECT_EQ(c.result, runs ? CheckResult::kPass : CheckResult::kSkipped) << c.name;
    }
    EXPECT_EQ(r.tensor_count, 21u);
  }
}

TEST_F(ConvertedModelTest, FullLevelHashesEveryTensorAndScansAllPadding) {
  const VerifyReport r = MustVerify(Bytes());
  EXPECT_EQ(r.checksummed_bytes, r.tensor_bytes);
  // Everything but the header, the tensors and the manifest is padding.
  const auto c = format::Container::OpenBuffer(Bytes(), "tiny");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(r.padding_bytes, r.file_size - format::kHeaderSize - r.tensor_bytes -
                                 (*c)->header().manifest_size);
}

TEST_F(ConvertedModelTest, StructureLevelReadsNoTensorData) {
  std::vector<uint8_t> bytes = Bytes();
  for (const format::TensorEntry& t : Tensors()) {
    std::fill_n(bytes.begin() + static_cast<ptrdiff_t>(t.offset()), t.nbytes(), 0x5A);
  }
  VerifyOptions structure;
  structure.level = VerifyLevel::kStructure;
  EXPECT_TRUE(MustVerify(bytes, structure).sound());
  const VerifyReport full = MustVerify(bytes);
  EXPECT_EQ(full.problem_count, Tensors().size());
}

TEST_F(ConvertedModelTest, ByteFlipAnywhereInAnyTensorIsFoundWithItsName) {
  const std::vector<format::TensorEntry> tensors = Tensors();
  ASSERT_EQ(tensors.size(), 21u);
  for (const format::TensorEntry& t : tensors) {
    for (const uint64_t at : {uint64_t{0}, t.nbytes() / 3, t.nbytes() - 1}) {
      std::vector<uint8_t> bytes = Bytes();
      bytes[t.offset() + at] ^= 0x10;
      const VerifyReport r = MustVerify(bytes);
      ASSERT_EQ(r.problem_count, 1u) << t.name() << " byte " << at << "\n" << FormatReportText(r);
      EXPECT_EQ(r.problems[0].check, "checksum");
      EXPECT_EQ(r.problems[0].tensor, t.name());
      EXPECT_EQ(r.problems[0].offset, t.offset());
    }
  }
}

TEST_F(ConvertedModelTest, NonzeroPaddingIsItsOwnCheckNamingTheTensorBefore) {
  const std::vector<format::TensorEntry> tensors = Tensors();
  std::vector<uint8_t> bytes = Bytes();
  const format::TensorEntry& t = tensors[3];
  const uint64_t at = t.offset() + t.nbytes() + 7;
  ASSERT_LT(at, tensors[4].offset());
  bytes[at] = 1;
  const VerifyReport r = MustVerify(bytes);
  EXPECT_THAT(ProblemChecks(r), ::testing::ElementsAre("padding"));
  EXPECT_EQ(r.problems[0].tensor, t.name());
  EXPECT_EQ(r.problems[0].offset, at);
  VerifyOptions structure;
  structure.level = VerifyLevel::kStructure;
  EXPECT_TRUE(MustVerify(bytes, structure).sound());
}

TEST_F(ConvertedModelTest, ReportsEveryProblemUpToTheBound) {
  const std::vector<format::TensorEntry> tensors = Tensors();
  std::vector<uint8_t> bytes = Bytes();
  for (size_t i = 0; i < 5; ++i) bytes[tensors[i].offset() + 1] ^= 0xFF;
  bytes[1000] = 7;  // padding after the header
  const VerifyReport all = MustVerify(bytes);
  ASSERT_EQ(all.problem_count, 6u) << FormatReportText(all);
  EXPECT_THAT(ProblemChecks(all), ::testing::ElementsAre("checksum", "checksum", "checksum",
                                                         "checksum", "checksum", "padding"));
  EXPECT_EQ(all.problems[0].tensor, tensors[0].name());
  EXPECT_EQ(all.problems[4].tensor, tensors[4].name());
  VerifyOptions bounded;
  bounded.max_problems = 2;
  const VerifyReport some = MustVerify(bytes, bounded);
  EXPECT_EQ(some.problem_count, 6u);
  EXPECT_EQ(some.problems.size(), 2u);
  EXPECT_THAT(FormatReportText(some), HasSubstr("first 2 of 6"));
}

TEST_F(ConvertedModelTest, EveryDataAccessModeThreadCountAndChunkSizeAgrees) {
  ScopedTempDir dir;
  const std::vector<format::TensorEntry> tensors = Tensors();
  std::vector<uint8_t> bytes = Bytes();
  bytes[tensors[2].offset() + 5] ^= 1;
  bytes[tensors[20].offset() + tensors[20].nbytes() - 1] ^= 1;
  bytes[tensors[7].offset() + tensors[7].nbytes() + 1] = 3;
  const std::string path = dir.File("damaged.zcpack");
  ASSERT_TRUE(testing::WriteFileBytes(path, bytes).ok());
  const VerifyReport reference = MustVerify(bytes);
  ASSERT_EQ(reference.problem_count, 3u);
  for (const DataAccess access : {DataAccess::kPread, DataAccess::kMmap, DataAccess::kMmapPopulate}) {
    for (const int threads : {1, 3}) {
      for (const size_t chunk : {size_t{4096}, size_t{1} << 20}) {
        VerifyOptions options;
        options.data_access = access;
        options.threads = threads;
        options.chunk_bytes = chunk;
        const auto r = Verify(path, options);
        ASSERT_TRUE(r.ok()) << r.status();
        EXPECT_EQ(ProblemChecks(*r), ProblemChecks(reference));
        for (size_t i = 0; i < r->problems.size(); ++i) {
          EXPECT_EQ(r->problems[i].tensor, reference.problems[i].tensor);
          EXPECT_EQ(r->problems[i].detail, reference.problems[i].detail);
        }
      }
    }
  }
}

TEST_F(ConvertedModelTest, JsonReportHasEveryCheckAndProblem) {
  std::vector<uint8_t> bytes = Bytes();
  const format::TensorEntry t = Tensors()[4];
  bytes[t.offset()] ^= 1;
  VerifyReport r = MustVerify(bytes);
  const auto j = nlohmann::json::parse(FormatReportJson(r));
  EXPECT_FALSE(j["sound"].get<bool>());
  EXPECT_EQ(j["checks"].size(), AllCheckNames().size());
  for (const auto& c : j["checks"]) {
    EXPECT_TRUE(c.contains("name") && c.contains("result") && c.contains("detail"));
    if (c["name"] == "checksum") {
      EXPECT_EQ(c["result"], "fail");
    }
    if (c["name"] == "source_tensors") {
      EXPECT_EQ(c["result"], "skipped");
    }
  }
  ASSERT_EQ(j["problems"].size(), 1u);
  EXPECT_EQ(j["problems"][0]["check"], "checksum");
  EXPECT_EQ(j["problems"][0]["tensor"], t.name());
  EXPECT_EQ(j["problems"][0]["offset"].get<uint64_t>(), t.offset());
}

// Paths are bytes and tensor names come from untrusted files: a report that
// quotes bytes that are not UTF-8 is still valid JSON (nlohmann threw
// type_error 316 from dump()), with each bad byte written as \xNN.
TEST(ReportFormatTest, JsonEscapesTextThatIsNotUtf8) {
  VerifyReport r;
  r.path = "b\xff.zcpack";
  r.against = "src\xfe";
  r.problems.push_back({"checksum", "blk.0.\xc3", 4096, "in b\xff.zcpack: bad"});
  r.problem_count = 1;
  r.comparisons.push_back({"name\x80"});
  std::string text;
  ASSERT_NO_THROW(text = FormatReportJson(r));
  const auto j = nlohmann::json::parse(text);
  EXPECT_EQ(j["input"], "b\\xff.zcpack");
  EXPECT_EQ(j["against"]["source"], "src\\xfe");
  EXPECT_EQ(j["problems"][0]["tensor"], "blk.0.\\xc3");
  EXPECT_EQ(j["problems"][0]["detail"], "in b\\xff.zcpack: bad");
  EXPECT_EQ(j["against"]["tensors"][0]["name"], "name\\x80");
}

// --against

TEST_F(ConvertedModelTest, AgainstItsOwnSourcePasses) {
  const VerifyReport r = VerifyAgainst(Source());
  EXPECT_TRUE(r.sound()) << FormatReportText(r);
  ASSERT_EQ(r.comparisons.size(), 21u);
  for (const char* check : {"source_model", "source_tensors", "source_shape", "source_data",
                            "quant_error", "quant_stats"}) {
    EXPECT_EQ(Outcome(r, check).result, CheckResult::kPass) << check;
  }
  for (const TensorComparison& c : r.comparisons) {
    if (c.unchanged || c.dtype == format::DTYPE_Q8_0) continue;
    EXPECT_EQ(c.dtype, format::DTYPE_Q4_0) << c.name;
    EXPECT_GT(c.snr_db, 15.0) << c.name;  // q4_0 of these weights: about 17-19 dB
    EXPECT_LT(c.snr_db, 25.0) << c.name;
  }
}

// The q8_0 output head is measured like every converted tensor, and matches
// the statistics the converter recorded for it.
TEST_F(ConvertedModelTest, AgainstMeasuresTheQ8_0Head) {
  const VerifyReport r = VerifyAgainst(Source());
  const auto head =
      std::find_if(r.comparisons.begin(), r.comparisons.end(),
                   [](const TensorComparison& c) { return c.name == "lm_head.weight"; });
  ASSERT_NE(head, r.comparisons.end());
  EXPECT_EQ(head->dtype, format::DTYPE_Q8_0);
  EXPECT_EQ(head->source_dtype, format::DTYPE_F16);
  EXPECT_FALSE(head->unchanged);
  EXPECT_GT(head->snr_db, 35.0);  // q8_0 of these weights: 41-43 dB
  EXPECT_GT(head->rmse, 0.0);
  EXPECT_GT(head->max_abs_error, 0.0);
  const std::vector<format::TensorEntry> tensors = Tensors();
  const format::TensorEntry& entry = tensors.back();
  ASSERT_EQ(entry.name(), "lm_head.weight");
  ASSERT_TRUE(entry.has_quant_stats());
  EXPECT_NEAR(entry.quant_stats().snr_db(), head->snr_db, 1e-9);
  EXPECT_EQ(Outcome(r, "quant_stats").result, CheckResult::kPass);
}

TEST_F(ConvertedModelTest, Q4KConversionPassesAgainstItsSource) {
  converter::ConvertOptions convert;
  convert.output = dir_->File("tiny.q4_k.zcpack");
  convert.quant = format::DTYPE_Q4_K;
  const VerifyReport r = ConvertAndVerifyAgainstSource(convert);
  EXPECT_TRUE(r.sound()) << FormatReportText(r);
  for (const TensorComparison& c : r.comparisons) {
    if (c.unchanged) continue;
    if (c.name == "lm_head.weight") {
      EXPECT_EQ(c.dtype, format::DTYPE_Q8_0);  // the head is q8_0 for q4_k too
      continue;
    }
    EXPECT_EQ(c.dtype, format::DTYPE_Q4_K) << c.name;
    EXPECT_GT(c.snr_db, 19.0) << c.name;  // about 20-22 dB
  }
}

// The converter's default stores the matrices in row groups; --against puts
// them back into ggml's order, so both layouts compare alike with the source,
// statistic for statistic.
TEST_F(ConvertedModelTest, AgainstGivesTheSameResultsForBothLayouts) {
  size_t grouped = 0;
  for (const format::TensorEntry& t : Tensors()) grouped += t.layout() == format::LAYOUT_ROW_GROUPS_16;
  EXPECT_EQ(grouped, 15u);  // 7 matrices per layer and the head
  converter::ConvertOptions convert;
  convert.output = dir_->File("tiny.row-major.zcpack");
  convert.matrix_layout = format::LAYOUT_ROW_MAJOR;
  const VerifyReport row_major = ConvertAndVerifyAgainstSource(convert);
  EXPECT_TRUE(row_major.sound()) << FormatReportText(row_major);
  const VerifyReport r = VerifyAgainst(Source());
  EXPECT_TRUE(r.sound()) << FormatReportText(r);
  ASSERT_EQ(r.comparisons.size(), row_major.comparisons.size());
  for (size_t i = 0; i < r.comparisons.size(); ++i) {
    const TensorComparison& a = r.comparisons[i];
    const TensorComparison& b = row_major.comparisons[i];
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.rmse, b.rmse) << a.name;
    EXPECT_EQ(a.snr_db, b.snr_db) << a.name;
    EXPECT_EQ(a.max_abs_error, b.max_abs_error) << a.name;
  }
}

// One changed byte of a row-grouped matrix: its checksum fails, and the
// comparison with the source (through the row groups) no longer gives the
// recorded statistics, for that tensor only.
TEST_F(ConvertedModelTest, AgainstFindsAChangedByteInARowGroupedTensor) {
  const std::vector<format::TensorEntry> tensors = Tensors();
  const auto q = std::find_if(tensors.begin(), tensors.end(), [](const format::TensorEntry& t) {
    return t.layout() == format::LAYOUT_ROW_GROUPS_16 && t.dtype() == format::DTYPE_Q4_0;
  });
  ASSERT_NE(q, tensors.end());
  std::vector<uint8_t> bytes = Bytes();
  // A nibble byte of the first group's second tile, not a scale.
  bytes[q->offset() + 16 * 18 + 40] ^= 0x77;
  const std::string path = dir_->File("changed.zcpack");
  ASSERT_TRUE(testing::WriteFileBytes(path, bytes).ok());
  VerifyOptions options;
  options.against = Source();
  const auto r = Verify(path, options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(ProblemChecks(*r), ::testing::ElementsAre("checksum", "quant_stats"))
      << FormatReportText(*r);
  for (const auto& problem : r->problems) EXPECT_EQ(problem.tensor, q->name());
}

TEST_F(ConvertedModelTest, AgainstAnotherSeedFailsEveryTensor) {
  const VerifyReport r = VerifyAgainst(OtherSeed());
  EXPECT_EQ(r.problem_count, 21u);
  EXPECT_EQ(Outcome(r, "quant_error").problems, 16u);  // the quantized tensors, head included
  EXPECT_EQ(Outcome(r, "source_data").problems, 5u);   // the norms
  EXPECT_EQ(Outcome(r, "source_model").result, CheckResult::kPass);
}

// One edit of the source and the single problem it must cause.
struct SourceEdit {
  std::string name;
  std::string check;
  std::string tensor;
  std::function<void(const converter::SourceTensor&, testing::SafetensorsTestWriter&)> edit;
};

TEST_F(ConvertedModelTest, AgainstAnEditedSourceFailsNamingTheTensor) {
  const std::string missing = "model.layers.1.mlp.up_proj.weight";
  const std::string reshaped = "model.layers.0.mlp.gate_proj.weight";  // not square
  const std::string scaled = "model.layers.1.self_attn.k_proj.weight";
  const std::vector<SourceEdit> edits = {
      {"missing", "source_tensors", missing,
       [&](const converter::SourceTensor& t, testing::SafetensorsTestWriter& w) {
         if (t.name != missing) Keep(t, w);
       }},
      {"extra", "source_tensors", "model.extra.weight",
       [&](const converter::SourceTensor& t, testing::SafetensorsTestWriter& w) {
         Keep(t, w);
         if (t.name == "model.norm.weight") {
           w.AddTensor("model.extra.weight", testing::SafetensorsDTypeName(t.dtype), t.shape,
                       std::vector<uint8_t>(t.data.begin(), t.data.end()));
         }
       }},
      {"reshaped", "source_shape", reshaped,
       [&](const converter::SourceTensor& t, testing::SafetensorsTestWriter& w) {
         if (t.name != reshaped) return Keep(t, w);
         // The same bytes, declared with the dimensions swapped.
         w.AddTensor(t.name, testing::SafetensorsDTypeName(t.dtype), {t.shape[1], t.shape[0]},
                     std::vector<uint8_t>(t.data.begin(), t.data.end()));
       }},
      // A "fine-tuned" variant: one tensor scaled by 1.001 quantizes within
      // every threshold, but not to the statistics recorded at conversion.
      {"scaled", "quant_stats", scaled,
       [&](const converter::SourceTensor& t, testing::SafetensorsTestWriter& w) {
         if (t.name != scaled) return Keep(t, w);
         const size_t n = t.data.size() / 2;
         std::vector<float> values(n);
         EXPECT_TRUE(format::ConvertToFloat(t.dtype, t.data.data(), n, values.data()).ok());
         for (float& v : values) v *= 1.001f;
         w.AddFloatTensor(t.name, t.dtype, t.shape, values);
       }},
  };
  for (const SourceEdit& e : edits) {
    const VerifyReport r = VerifyAgainst(WriteEditedSource(e.name, e.edit));
    ASSERT_THAT(ProblemChecks(r), ::testing::ElementsAre(e.check)) << e.name;
    EXPECT_EQ(r.problems[0].tensor, e.tensor) << e.name;
  }
}

TEST_F(ConvertedModelTest, AgainstDifferentHyperparametersFailsSourceModel) {
  const std::string source = WriteEditedSource("theta", Keep);
  auto config = nlohmann::json::parse(ReadText(source + "/config.json"));
  config["rope_theta"] = 500000.0;
  WriteText(source + "/config.json", config.dump());
  const VerifyReport r = VerifyAgainst(source);
  ASSERT_THAT(ProblemChecks(r), ::testing::ElementsAre("source_model"));
  EXPECT_THAT(r.problems[0].detail, HasSubstr("rope_theta"));
}

TEST_F(ConvertedModelTest, ThresholdsDecideQuantError) {
  VerifyOptions strict;
  strict.min_snr_db = 30;  // above what 4 bits can give; the q8_0 head passes
  EXPECT_EQ(Outcome(VerifyAgainst(Source(), strict), "quant_error").problems, 15u);
  VerifyOptions rmse;
  rmse.max_rmse = 1e-4;  // below even the q8_0 head's error
  const VerifyReport r = VerifyAgainst(Source(), rmse);
  EXPECT_EQ(Outcome(r, "quant_error").problems, 16u);
  EXPECT_THAT(r.problems[0].detail, HasSubstr("above --max-rmse"));
}

TEST_F(ConvertedModelTest, MissingSourceIsNotFound) {
  VerifyOptions options;
  options.against = dir_->File("no-such-model");
  const auto r = Verify(Container(), options);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(r.status().message(), HasSubstr("no-such-model"));
}

TEST(AgainstGgufTest, ContainerConvertedFromGgufVerifiesAgainstIt) {
  ScopedTempDir dir;
  format::ModelInfo model = testing::TinyLlamaModelInfo();
  model.set_hidden_size(64);
  model.set_head_dim(16);
  model.set_intermediate_size(128);
  const std::string gguf = dir.File("tiny.gguf");
  ASSERT_TRUE(testing::WriteFileBytes(gguf, testing::TinyLlamaGguf(model, format::DTYPE_F16)).ok());
  converter::ConvertOptions convert;
  convert.source = gguf;
  convert.output = dir.File("tiny.zcpack");
  convert.quant = format::DTYPE_Q4_0;  // rows of 64: q4_k would fall back to f16
  const auto converted = converter::Convert(convert);
  ASSERT_TRUE(converted.ok()) << converted.status();
  VerifyOptions options;
  options.against = gguf;
  const auto r = Verify(convert.output, options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->sound()) << FormatReportText(*r);
  const std::vector<uint8_t> other = testing::TinyLlamaGguf(model, format::DTYPE_F16, 7);
  ASSERT_TRUE(testing::WriteFileBytes(gguf, other).ok());
  const auto r2 = Verify(convert.output, options);
  ASSERT_TRUE(r2.ok());
  EXPECT_FALSE(r2->sound());
  EXPECT_GT(Outcome(*r2, "quant_error").problems, 0u) << FormatReportText(*r2);
}

// ------------------------------------------------------------ the model ---

// A small llama whose every tensor is f32 (no quantization needed).
format::Manifest ModelManifest() {
  format::Manifest manifest = testing::SmallManifest();
  manifest.mutable_model()->set_intermediate_size(128);
  return manifest;
}

// Tensors for ExpectedTensors(model), random f32 data, named "<role>.<layer>".
std::vector<testing::TensorFixture> ModelTensors(const format::ModelInfo& model) {
  std::vector<testing::TensorFixture> out;
  std::mt19937_64 rng(5);
  const auto expected = format::ExpectedTensors(model);
  EXPECT_TRUE(expected.ok()) << expected.status();
  for (const format::ExpectedTensor& e : *expected) {
    testing::TensorFixture t;
    t.plan.name = absl::StrCat(format::TensorRoleName(e.role), ".", e.layer);
    t.plan.role = e.role;
    t.plan.layer = e.layer;
    t.plan.dtype = format::DTYPE_F32;
    t.plan.source_dtype = format::DTYPE_F32;
    t.plan.shape = e.shape;
    t.bytes = testing::RandomBytes(static_cast<size_t>(*format::TensorByteSize(t.plan.dtype, e.shape)), rng);
    out.push_back(std::move(t));
  }
  return out;
}

class ModelCheckTest : public ::testing::Test {
 protected:
  // Writes the tensors and returns the full-level report.
  VerifyReport VerifyTensors(const std::vector<testing::TensorFixture>& tensors,
                             const format::Manifest& manifest = ModelManifest()) {
    format::WriterOptions options;
    options.alignment = 4096;
    EXPECT_TRUE(testing::WriteContainer(Path(), tensors, options, manifest).ok());
    auto r = Verify(Path());
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *std::move(r) : VerifyReport{};
  }

  std::string Path() const { return dir_.File("model.zcpack"); }

  // The runtime refuses the last container VerifyTensors() wrote with
  // `code`, and says what verify's first problem says.
  void ExpectRuntimeRefusesAsVerifyReports(const VerifyReport& r, absl::StatusCode code) {
    ASSERT_FALSE(r.problems.empty());
    const auto model = runtime::Model::Open(Path());
    ASSERT_FALSE(model.ok());
    EXPECT_EQ(model.status().code(), code);
    EXPECT_THAT(model.status().message(), HasSubstr(Path()));
    EXPECT_THAT(model.status().message(), HasSubstr(r.problems[0].detail));
  }

  std::vector<testing::TensorFixture> tensors_ = ModelTensors(ModelManifest().model());
  ScopedTempDir dir_;
};

TEST_F(ModelCheckTest, CompleteModelIsSound) {
  const VerifyReport r = VerifyTensors(tensors_);
  EXPECT_TRUE(r.sound()) << FormatReportText(r);
}

TEST_F(ModelCheckTest, MissingTensorIsNamedByRoleAndLayer) {
  tensors_.erase(tensors_.begin() + 18);  // layer 1's ffn_down
  const VerifyReport r = VerifyTensors(tensors_);
  EXPECT_THAT(ProblemChecks(r), ::testing::ElementsAre("model_tensors"));
  EXPECT_THAT(r.problems[0].detail, HasSubstr("missing tensor ffn_down, layer 1"));
}

TEST_F(ModelCheckTest, WrongShapeNamesTheTensor) {
  tensors_[2].plan.shape = {32, 64};  // attn_q of layer 0 should be [64, 64]
  tensors_[2].bytes.resize(32 * 64 * 4);
  const VerifyReport r = VerifyTensors(tensors_);
  EXPECT_THAT(ProblemChecks(r), ::testing::ElementsAre("model_tensors"));
  EXPECT_EQ(r.problems[0].tensor, "attn_q.0");
  EXPECT_THAT(r.problems[0].detail, HasSubstr("has shape [32, 64], expected [64, 64]"));
}

TEST_F(ModelCheckTest, TensorsOutOfForwardOrderFailAccessOrder) {
  std::swap(tensors_[2], tensors_[3]);  // k before q
  const VerifyReport r = VerifyTensors(tensors_);
  EXPECT_THAT(ProblemChecks(r), ::testing::ElementsAre("access_order"));
  EXPECT_EQ(r.problems[0].tensor, "attn_q.0");
}

TEST_F(ModelCheckTest, UnusedBiasIsReported) {
  testing::TensorFixture bias = tensors_[2];
  bias.plan.name = "attn_q_bias.0";
  bias.plan.role = format::ROLE_ATTN_Q_BIAS;
  bias.plan.shape = {64};
  bias.bytes.resize(64 * 4);
  tensors_.insert(tensors_.begin() + 3, bias);
  const VerifyReport r = VerifyTensors(tensors_);
  EXPECT_THAT(ProblemChecks(r), ::testing::ElementsAre("model_tensors"));
  EXPECT_THAT(r.problems[0].detail, HasSubstr("attention_bias is false"));
}

TEST_F(ModelCheckTest, MissingLayerFailsLayerRanges) {
  format::Manifest manifest = ModelManifest();
  manifest.mutable_model()->set_num_layers(3);  // the tensors have two
  const VerifyReport r = VerifyTensors(tensors_, manifest);
  EXPECT_EQ(Outcome(r, "layer_ranges").problems, 1u);
  EXPECT_EQ(Outcome(r, "model_tensors").problems, 9u);  // layer 2's tensors
}

// Issue 11, item 16: what the runtime refuses at load, verify reports.
TEST_F(ModelCheckTest, UnsetRopeLayoutIsUnsoundAsTheRuntimeRefusesIt) {
  format::Manifest manifest = ModelManifest();
  manifest.mutable_model()->set_rope_layout(format::ROPE_LAYOUT_UNSPECIFIED);
  const VerifyReport r = VerifyTensors(tensors_, manifest);
  EXPECT_THAT(ProblemChecks(r), ::testing::ElementsAre("rope"));
  EXPECT_THAT(r.problems[0].detail, HasSubstr("does not record its RoPE row layout"));
  ExpectRuntimeRefusesAsVerifyReports(r, absl::StatusCode::kUnimplemented);
}

TEST_F(ModelCheckTest, UnknownRopeLayoutIsUnsoundAsTheRuntimeRefusesIt) {
  format::Manifest manifest = ModelManifest();
  manifest.mutable_model()->set_rope_layout(static_cast<format::RopeLayout>(7));
  const VerifyReport r = VerifyTensors(tensors_, manifest);
  EXPECT_THAT(ProblemChecks(r), ::testing::ElementsAre("rope"));
  EXPECT_THAT(r.problems[0].detail, HasSubstr("rope_layout is 7"));
  ExpectRuntimeRefusesAsVerifyReports(r, absl::StatusCode::kUnimplemented);
}

TEST_F(ModelCheckTest, OddHeadDimIsUnsoundAsTheRuntimeRefusesIt) {
  format::Manifest manifest = ModelManifest();
  manifest.mutable_model()->set_head_dim(15);  // q rows 60, k and v rows 30
  tensors_ = ModelTensors(manifest.model());
  const VerifyReport r = VerifyTensors(tensors_, manifest);
  EXPECT_THAT(ProblemChecks(r), ::testing::ElementsAre("rope"));
  EXPECT_THAT(r.problems[0].detail, HasSubstr("odd head_dim 15"));
  ExpectRuntimeRefusesAsVerifyReports(r, absl::StatusCode::kUnimplemented);
}

TEST_F(ModelCheckTest, MissingTensorIsRefusedByTheRuntimeInVerifysWords) {
  tensors_.erase(tensors_.begin() + 18);  // layer 1's ffn_down
  const VerifyReport r = VerifyTensors(tensors_);
  ExpectRuntimeRefusesAsVerifyReports(r, absl::StatusCode::kDataLoss);
}

TEST_F(ModelCheckTest, InvalidHyperparametersAreRefusedByTheRuntimeInVerifysWords) {
  format::Manifest manifest = ModelManifest();
  manifest.mutable_model()->set_num_kv_heads(3);
  const VerifyReport r = VerifyTensors(tensors_, manifest);
  ExpectRuntimeRefusesAsVerifyReports(r, absl::StatusCode::kDataLoss);
}

// Issue 11, item 7: a layer count of 2^20 is checked against the 21 tensors
// before anything proportional to it is built (it cost 1.1 GB and seconds,
// then a million problems).
TEST_F(ModelCheckTest, HugeLayerCountIsRefusedAgainstTheTensorTable) {
  format::Manifest manifest = ModelManifest();
  manifest.mutable_model()->set_num_layers(uint32_t{1} << 20);
  const VerifyReport r = VerifyTensors(tensors_, manifest);
  EXPECT_THAT(ProblemChecks(r), ::testing::ElementsAre("model_tensors"));
  EXPECT_THAT(r.problems[0].detail,
              HasSubstr("declares 1048576 layers, more than the 21 tensors of its table"));
  EXPECT_EQ(Outcome(r, "layer_ranges").result, CheckResult::kSkipped);
  ExpectRuntimeRefusesAsVerifyReports(r, absl::StatusCode::kDataLoss);
}

TEST_F(ModelCheckTest, OutOfOrderTensorsAreUnsoundButTheRuntimeRunsThem) {
  std::swap(tensors_[2], tensors_[3]);  // k before q
  const VerifyReport r = VerifyTensors(tensors_);
  EXPECT_THAT(ProblemChecks(r), ::testing::ElementsAre("access_order"));
  EXPECT_TRUE(runtime::Model::Open(Path()).ok());
}

TEST_F(ModelCheckTest, InvalidHyperparametersStopTheModelChecks) {
  format::Manifest manifest = ModelManifest();
  manifest.mutable_model()->set_num_kv_heads(3);
  const VerifyReport r = VerifyTensors(tensors_, manifest);
  EXPECT_THAT(ProblemChecks(r), ::testing::ElementsAre("model_info"));
  EXPECT_EQ(Outcome(r, "model_tensors").result, CheckResult::kSkipped);
  // The data checks still run.
  EXPECT_EQ(Outcome(r, "checksum").result, CheckResult::kPass);
}

}  // namespace
}  // namespace zcpack::validator

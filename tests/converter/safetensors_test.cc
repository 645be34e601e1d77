// Safetensors reader: valid files of every float dtype, every truncation
// length, byte flips, and a table of broken headers with their status codes.
#include "zcpack/converter/safetensors.h"

#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/converter/gguf_test_writer.h"
#include "tests/converter/safetensors_test_writer.h"

namespace zcpack::converter {
namespace {

using absl::StatusCode;
using testing::EncodeFloats;
using testing::PseudoRandomFloats;
using testing::SafetensorsTestWriter;

std::vector<uint8_t> ValidFile() {
  SafetensorsTestWriter w;
  w.AddMetadata("format", "pt")
      .AddFloatTensor("a.weight", format::DTYPE_F32, {3, 4}, PseudoRandomFloats(12, 1))
      .AddFloatTensor("b.weight", format::DTYPE_F16, {5}, PseudoRandomFloats(5, 2))
      .AddFloatTensor("c.weight", format::DTYPE_BF16, {2, 2, 2}, PseudoRandomFloats(8, 3));
  return w.Build();
}

StatusCode ParseCode(const std::vector<uint8_t>& bytes, const SafetensorsLimits& limits = {}) {
  return ParseSafetensors(bytes, "test.safetensors", limits).status().code();
}

TEST(SafetensorsTest, ParsesEveryFloatDType) {
  const std::vector<uint8_t> bytes = ValidFile();
  auto header = ParseSafetensors(bytes, "test.safetensors");
  ASSERT_TRUE(header.ok()) << header.status();
  ASSERT_EQ(header->tensors.size(), 3u);
  EXPECT_EQ(header->tensors[0].name, "a.weight");
  EXPECT_EQ(header->tensors[0].dtype, format::DTYPE_F32);
  EXPECT_EQ(header->tensors[0].shape, (std::vector<uint64_t>{3, 4}));
  EXPECT_EQ(header->tensors[0].offset, header->data_offset);
  EXPECT_EQ(header->tensors[0].nbytes, 48u);
  EXPECT_EQ(header->tensors[1].dtype, format::DTYPE_F16);
  EXPECT_EQ(header->tensors[1].nbytes, 10u);
  EXPECT_EQ(header->tensors[2].dtype, format::DTYPE_BF16);
  EXPECT_EQ(header->tensors[2].dtype_name, "BF16");
  EXPECT_EQ(header->tensors[2].offset + header->tensors[2].nbytes, bytes.size());
  ASSERT_EQ(header->metadata.size(), 1u);
  EXPECT_EQ(header->metadata[0].first, "format");
}

TEST(SafetensorsTest, DataViewsHoldTheWrittenBytes) {
  const std::vector<uint8_t> bytes = ValidFile();
  auto header = ParseSafetensors(bytes, "test.safetensors");
  ASSERT_TRUE(header.ok()) << header.status();
  const SafetensorsEntry& c = header->tensors[2];
  const std::vector<uint8_t> expected = EncodeFloats(PseudoRandomFloats(8, 3), format::DTYPE_BF16);
  EXPECT_EQ(std::vector<uint8_t>(bytes.begin() + static_cast<ptrdiff_t>(c.offset),
                                 bytes.begin() + static_cast<ptrdiff_t>(c.offset + c.nbytes)),
            expected);
}

TEST(SafetensorsTest, OtherKnownDTypesAreSizedButUnspecified) {
  SafetensorsTestWriter w;
  w.AddTensor("ids", "I64", {3}, std::vector<uint8_t>(24));
  auto header = ParseSafetensors(w.Build(), "ids.safetensors");
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_EQ(header->tensors[0].dtype, format::DTYPE_UNSPECIFIED);
  EXPECT_EQ(header->tensors[0].dtype_name, "I64");
}

TEST(SafetensorsTest, EmptyAndScalarTensorsAreAccepted) {
  SafetensorsTestWriter w;
  w.AddTensor("empty", "F32", {0, 4}, {}).AddTensor("scalar", "F32", {}, std::vector<uint8_t>(4));
  auto header = ParseSafetensors(w.Build(), "odd.safetensors");
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_EQ(header->tensors.size(), 2u);
}

TEST(SafetensorsTest, EveryTruncationIsDataLoss) {
  const std::vector<uint8_t> bytes = ValidFile();
  for (size_t n = 0; n < bytes.size(); ++n) {
    const std::vector<uint8_t> prefix(bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(n));
    EXPECT_EQ(ParseCode(prefix), StatusCode::kDataLoss) << "length " << n;
  }
}

TEST(SafetensorsTest, ByteFlipsNeverCrash) {
  const std::vector<uint8_t> bytes = ValidFile();
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (uint8_t mask : {0x01, 0x80, 0xff}) {
      std::vector<uint8_t> damaged = bytes;
      damaged[i] ^= mask;
      (void)ParseSafetensors(damaged, "flipped.safetensors");
    }
  }
}

struct BrokenCase {
  std::string name;
  std::vector<uint8_t> bytes;
  StatusCode code;
  std::string message_part;  // the message must name this (tensor, file, ...)
};
void PrintTo(const BrokenCase& c, std::ostream* os) { *os << c.name; }

std::vector<uint8_t> WithHeader(const std::string& text, size_t data_bytes = 0) {
  SafetensorsTestWriter w;
  w.SetHeaderText(text);
  std::vector<uint8_t> out = w.Build();
  out.resize(out.size() + data_bytes, 0);
  return out;
}

std::vector<BrokenCase> BrokenCases() {
  std::vector<BrokenCase> cases;
  {
    std::vector<uint8_t> b = ValidFile();
    b[0] = 0xff;
    b[1] = 0xff;  // header length ~65 KB, far beyond the file
    cases.push_back({"HeaderLengthBeyondFile", b, StatusCode::kDataLoss, "runs past the end"});
  }
  {
    std::vector<uint8_t> b = ValidFile();
    for (int i = 0; i < 8; ++i) b[static_cast<size_t>(i)] = 0xff;
    cases.push_back({"HeaderLengthAbsurd", b, StatusCode::kDataLoss, "runs past the end"});
  }
  cases.push_back({"JsonNotAnObject", WithHeader("[1, 2, 3]"), StatusCode::kInvalidArgument,
                   "test.safetensors"});
  cases.push_back({"HeaderIsText", WithHeader("hello world"), StatusCode::kInvalidArgument,
                   "not a safetensors file"});
  cases.push_back({"JsonUnterminated", WithHeader("{\"a\": {"), StatusCode::kDataLoss,
                   "not valid JSON"});
  cases.push_back({"EntryNotAnObject", WithHeader(R"({"t": 5})"), StatusCode::kDataLoss, "'t'"});
  cases.push_back({"UnknownDType",
                   WithHeader(R"({"w": {"dtype": "Q9", "shape": [2], "data_offsets": [0, 2]}})", 2),
                   StatusCode::kUnimplemented, "'w' has unknown dtype 'Q9'"});
  cases.push_back({"MissingDType",
                   WithHeader(R"({"w": {"shape": [2], "data_offsets": [0, 8]}})", 8),
                   StatusCode::kDataLoss, "'w'"});
  cases.push_back({"NegativeDimension",
                   WithHeader(R"({"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})", 8),
                   StatusCode::kDataLoss, "'w'"});
  cases.push_back({"ByteCountWrongForShape",
                   WithHeader(R"({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", 8),
                   StatusCode::kDataLoss, "expected 12"});
  cases.push_back({"ShapeOverflows",
                   WithHeader(R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 8]}})", 8),
                   StatusCode::kDataLoss, "overflows"});
  cases.push_back({"OffsetsOutsideData",
                   WithHeader(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}})", 8),
                   StatusCode::kDataLoss, "outside the data section"});
  cases.push_back({"OffsetsReversed",
                   WithHeader(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}})", 8),
                   StatusCode::kDataLoss, "'w'"});
  cases.push_back({"OffsetsNotAPair",
                   WithHeader(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0]}})", 8),
                   StatusCode::kDataLoss, "'w'"});
  cases.push_back({"OffsetsHuge",
                   WithHeader(R"({"w": {"dtype": "U8", "shape": [1], "data_offsets": [18446744073709551615, 0]}})", 8),
                   StatusCode::kDataLoss, "'w'"});
  cases.push_back(
      {"OverlappingOffsets",
       WithHeader(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                      "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})", 12),
       StatusCode::kDataLoss, "overlap"});
  cases.push_back(
      {"DuplicateTensorName",
       WithHeader(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                      "a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}})", 16),
       StatusCode::kDataLoss, "'a' more than once"});
  cases.push_back({"MetadataNotStrings", WithHeader(R"({"__metadata__": {"n": 1}})"),
                   StatusCode::kDataLoss, "__metadata__"});
  {
    SafetensorsTestWriter w;
    w.AddTensor("w", "F32", {2}, std::vector<uint8_t>(8), std::make_pair(uint64_t{0}, uint64_t{4}));
    cases.push_back({"WriterOffsetsShort", w.Build(), StatusCode::kDataLoss, "expected 8"});
  }
  return cases;
}

class SafetensorsBrokenTest : public ::testing::TestWithParam<BrokenCase> {};

TEST_P(SafetensorsBrokenTest, RejectedWithItsCode) {
  const BrokenCase& c = GetParam();
  auto header = ParseSafetensors(c.bytes, "test.safetensors");
  ASSERT_FALSE(header.ok());
  EXPECT_EQ(header.status().code(), c.code) << header.status();
  EXPECT_NE(header.status().message().find(c.message_part), absl::string_view::npos)
      << header.status();
  EXPECT_NE(header.status().message().find("test.safetensors"), absl::string_view::npos)
      << header.status();
}

INSTANTIATE_TEST_SUITE_P(Cases, SafetensorsBrokenTest, ::testing::ValuesIn(BrokenCases()),
                         [](const auto& p) { return p.param.name; });

TEST(SafetensorsTest, LimitsAreEnforced) {
  const std::vector<uint8_t> bytes = ValidFile();
  SafetensorsLimits tensors;
  tensors.max_tensors = 2;
  EXPECT_EQ(ParseCode(bytes, tensors), StatusCode::kResourceExhausted);
  SafetensorsLimits rank;
  rank.max_rank = 2;
  EXPECT_EQ(ParseCode(bytes, rank), StatusCode::kResourceExhausted);
  SafetensorsLimits header_bytes;
  header_bytes.max_header_bytes = 16;
  EXPECT_EQ(ParseCode(bytes, header_bytes), StatusCode::kResourceExhausted);
  SafetensorsLimits names;
  names.max_name_bytes = 4;
  EXPECT_EQ(ParseCode(bytes, names), StatusCode::kResourceExhausted);
}

TEST(SafetensorsIndexTest, ParsesWeightMap) {
  auto index = ParseSafetensorsIndex(
      R"({"metadata": {"total_size": 10}, "weight_map": {"b": "s2.safetensors", "a": "s1.safetensors", "c": "s1.safetensors"}})",
      "model.safetensors.index.json");
  ASSERT_TRUE(index.ok()) << index.status();
  ASSERT_EQ(index->weight_map.size(), 3u);
  EXPECT_EQ(index->weight_map[0], std::make_pair(std::string("a"), std::string("s1.safetensors")));
  EXPECT_EQ(index->shards, (std::vector<std::string>{"s1.safetensors", "s2.safetensors"}));
}

TEST(SafetensorsIndexTest, RejectsBadIndexes) {
  const auto code = [](const std::string& text) {
    return ParseSafetensorsIndex(text, "index.json").status().code();
  };
  EXPECT_EQ(code("not json"), StatusCode::kInvalidArgument);
  EXPECT_EQ(code("[]"), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(R"({"metadata": {}})"), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(R"({"weight_map": {"a": 3}})"), StatusCode::kDataLoss);
  EXPECT_EQ(code(R"({"weight_map": {"a": "../../etc/passwd"}})"), StatusCode::kDataLoss);
  EXPECT_EQ(code(R"({"weight_map": {"a": ".."}})"), StatusCode::kDataLoss);
  EXPECT_EQ(code(R"({"weight_map": {"a": ""}})"), StatusCode::kDataLoss);
}

// The header streams past as JSON events: __metadata__ entries are counted as
// they arrive and more than the limit is refused, naming the file.
TEST(SafetensorsTest, MetadataEntriesBeyondTheLimitAreRefusedNamingTheFile) {
  const SafetensorsLimits limits;
  std::string text = "{\"__metadata__\": {";
  for (uint64_t i = 0; i <= limits.max_metadata_entries; ++i) {
    absl::StrAppend(&text, i == 0 ? "" : ",", "\"k", i, "\":\"v\"");
  }
  text += "}}";
  auto header = ParseSafetensors(WithHeader(text), "many.safetensors");
  EXPECT_EQ(header.status().code(), StatusCode::kResourceExhausted) << header.status();
  EXPECT_EQ(header.status().message(),
            absl::StrCat("many.safetensors: __metadata__ has more than ",
                         limits.max_metadata_entries, " entries, the limit"));
}

// Nesting is bounded wherever it happens, here inside a field the reader
// otherwise ignores.
TEST(SafetensorsTest, NestingBeyondTheDepthLimitIsRefusedNamingTheFile) {
  const SafetensorsLimits limits;
  const std::string deep = std::string(limits.max_json_depth + 1, '[') +
                           std::string(limits.max_json_depth + 1, ']');
  auto header = ParseSafetensors(
      WithHeader(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8], "x": )" + deep +
                     "}}",
                 8),
      "deep.safetensors");
  EXPECT_EQ(header.status().code(), StatusCode::kResourceExhausted) << header.status();
  EXPECT_EQ(header.status().message(),
            absl::StrCat("deep.safetensors: header JSON nests deeper than ",
                         limits.max_json_depth, " levels, the limit"));
  // One level less is accepted.
  const std::string fits = std::string(limits.max_json_depth - 3, '[') +
                           std::string(limits.max_json_depth - 3, ']');
  EXPECT_TRUE(ParseSafetensors(
                  WithHeader(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8], "x": )" +
                                 fits + "}}",
                             8),
                  "deep.safetensors")
                  .ok());
}

// The index is read as JSON events too: depth, entry count and name lengths
// are bounded as they arrive, and the error names the file.
TEST(SafetensorsIndexTest, LimitsAreEnforcedNamingTheFile) {
  const std::string file = "model.safetensors.index.json";
  const SafetensorsLimits defaults;
  const std::string deep = std::string(defaults.max_json_depth, '[') +
                           std::string(defaults.max_json_depth, ']');
  auto index = ParseSafetensorsIndex(R"({"metadata": )" + deep + R"(, "weight_map": {}})", file);
  EXPECT_EQ(index.status().code(), StatusCode::kResourceExhausted) << index.status();
  EXPECT_EQ(index.status().message(),
            absl::StrCat(file, ": JSON nests deeper than ", defaults.max_json_depth,
                         " levels, the limit"));

  SafetensorsLimits two;
  two.max_tensors = 2;
  index = ParseSafetensorsIndex(
      R"({"weight_map": {"a": "s.safetensors", "b": "s.safetensors", "c": "s.safetensors"}})",
      file, two);
  EXPECT_EQ(index.status().code(), StatusCode::kResourceExhausted) << index.status();
  EXPECT_EQ(index.status().message(),
            absl::StrCat(file, ": weight_map lists more than 2 tensors, the limit"));

  SafetensorsLimits short_names;
  short_names.max_name_bytes = 3;
  index = ParseSafetensorsIndex(R"({"weight_map": {"abcd": "s.safetensors"}})", file, short_names);
  EXPECT_EQ(index.status().code(), StatusCode::kResourceExhausted) << index.status();
  EXPECT_NE(index.status().message().find(file), absl::string_view::npos);
}

TEST(SafetensorsIndexTest, DuplicateTensorIsDataLoss) {
  auto index = ParseSafetensorsIndex(
      R"({"weight_map": {"a": "s1.safetensors", "a": "s2.safetensors"}})", "index.json");
  EXPECT_EQ(index.status().code(), StatusCode::kDataLoss) << index.status();
  EXPECT_EQ(index.status().message(), "index.json: weight_map names tensor 'a' more than once");
}

// Everything outside "weight_map" is skipped without being kept.
TEST(SafetensorsIndexTest, SkipsOtherKeysOfAnyShape) {
  auto index = ParseSafetensorsIndex(
      R"({"metadata": {"total_size": 10, "x": [1, {"y": null}, "z"]}, "extra": true,
          "weight_map": {"b": "s2.safetensors", "a": "s1.safetensors"}})",
      "index.json");
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_EQ(index->weight_map,
            (std::vector<std::pair<std::string, std::string>>{{"a", "s1.safetensors"},
                                                               {"b", "s2.safetensors"}}));
}

}  // namespace
}  // namespace zcpack::converter

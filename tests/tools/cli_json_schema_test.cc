// Issue 14, item 4: one --json schema across commands. Every command that
// takes --json is run end to end, and what it prints is checked against
// docs/zcpack.schema.json (tests/testing/json_schema.h): each success
// report, and the error object each prints when it fails (exit code
// unchanged, the human message still on stderr).
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/converter/gguf_test_writer.h"
#include "tests/runtime/text_model.h"
#include "tests/testing/container_fixtures.h"
#include "tests/testing/json_schema.h"
#include "tests/tools/cli_runner.h"

namespace zcpack::testing {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;

class JsonSchemaCliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ScopedTempDir();
    std::ifstream in(ZCPACK_SCHEMA_PATH);
    absl::StatusOr<JsonSchema> schema = JsonSchema::Parse(json::parse(in));
    ASSERT_TRUE(schema.ok()) << schema.status();
    schema_ = new JsonSchema(*std::move(schema));
    model_ = new std::string(TextModel(*dir_, "text", kChatMlTemplate));
  }
  static void TearDownTestSuite() {
    delete model_;
    delete schema_;
    delete dir_;
  }

  // The one JSON object `r` printed, after checking its exit code and that
  // it is valid against the schema (`definition`: a $defs name, or the root).
  static json Report(const CliResult& r, int exit_code, const std::string& definition = "") {
    EXPECT_EQ(r.exit_code, exit_code) << r.err << r.out;
    const json j = json::parse(r.out, nullptr, /*allow_exceptions=*/false);
    EXPECT_TRUE(j.is_object()) << "not one JSON object:\n" << r.out;
    if (!j.is_object()) return json::object();
    const std::vector<std::string> errors = schema_->Validate(j, definition);
    EXPECT_TRUE(errors.empty()) << absl::StrJoin(errors, "\n") << "\n" << r.out;
    EXPECT_EQ(j["schema_version"], 1);
    return j;
  }

  // A failure reported as the schema's error_report: the exit code's name
  // and number, the status, the file, the message also on stderr.
  static json Error(const std::vector<std::string>& args, int exit_code, const std::string& code) {
    const CliResult r = RunZcpack(args);
    const json j = Report(r, exit_code, "error_report");
    EXPECT_EQ(j["command"], args[0]);
    const json& e = j["error"];
    EXPECT_EQ(e["code"], code) << r.out;
    EXPECT_EQ(e["exit_code"], exit_code);
    EXPECT_THAT(r.err, HasSubstr(e["message"].get<std::string>()));
    return e;
  }

  static ScopedTempDir* dir_;
  static JsonSchema* schema_;
  static std::string* model_;
};
ScopedTempDir* JsonSchemaCliTest::dir_ = nullptr;
JsonSchema* JsonSchemaCliTest::schema_ = nullptr;
std::string* JsonSchemaCliTest::model_ = nullptr;

TEST_F(JsonSchemaCliTest, SynthReport) {
  const json j = Report(RunZcpack({"synth", "--shape", "tiny", "-o", dir_->File("synth"), "--json"}), 0);
  EXPECT_EQ(j["command"], "synth");
  EXPECT_EQ(j["output"], dir_->File("synth"));
  EXPECT_GT(j["parameters"].get<uint64_t>(), 0u);
}

TEST_F(JsonSchemaCliTest, ConvertReport) {
  ASSERT_EQ(RunZcpack({"synth", "--shape", "tiny", "-o", dir_->File("src")}).exit_code, 0);
  const std::string out = dir_->File("converted.zcpack");
  const json j = Report(RunZcpack({"convert", dir_->File("src"), "-o", out, "--threads", "0", "--json"}), 0);
  EXPECT_EQ(j["command"], "convert");
  EXPECT_EQ(j["input"], dir_->File("src"));
  EXPECT_EQ(j["output"], out);
  EXPECT_GE(j["threads"].get<int>(), 1);  // --threads 0 is reported as what ran
  EXPECT_GT(j["parameters"].get<uint64_t>(), j["quantized_parameters"].get<uint64_t>());
}

TEST_F(JsonSchemaCliTest, ExportAndConvertToGgufReports) {
  const std::string gguf = dir_->File("exported.gguf");
  const json e = Report(RunZcpack({"export", *model_, "-o", gguf, "--json"}), 0);
  EXPECT_EQ(e["command"], "export");
  EXPECT_EQ(e["input"], *model_);
  const json c = Report(
      RunZcpack({"convert", gguf, "-o", dir_->File("aligned.gguf"), "--to", "gguf", "--json"}), 0);
  EXPECT_EQ(c["command"], "convert");
  EXPECT_EQ(c["tensors"].size(), e["tensors"].size());
}

TEST_F(JsonSchemaCliTest, InspectReport) {
  const json j = Report(RunZcpack({"inspect", *model_, "--checksums", "--json"}), 0);
  EXPECT_EQ(j["command"], "inspect");
  EXPECT_EQ(j["checksums_ok"], true);
  EXPECT_EQ(j["totals"]["tensor_count"], j["tensors"].size());
}

TEST_F(JsonSchemaCliTest, VerifyReport) {
  const json j = Report(RunZcpack({"verify", *model_, "--json"}), 0);
  EXPECT_EQ(j["command"], "verify");
  EXPECT_TRUE(j["sound"].get<bool>());
  EXPECT_FALSE(j.contains("error"));
}

TEST_F(JsonSchemaCliTest, RunReports) {
  const json ids = Report(RunZcpack({"run", *model_, "--tokens", "1,2", "-n", "3", "--json"}), 0);
  EXPECT_EQ(ids["command"], "run");
  EXPECT_EQ(ids["generated"].size(), 3u);
  const json text = Report(RunZcpack({"run", *model_, "--prompt", "hello", "-n", "3", "--json"}), 0);
  EXPECT_TRUE(text.contains("text"));
  const json chat = Report(RunZcpack({"run", *model_, "--chat", "hi", "-n", "3", "--json"}), 0);
  EXPECT_TRUE(chat.contains("prompt_text"));
}

TEST_F(JsonSchemaCliTest, TokenizeReport) {
  const json j = Report(RunZcpack({"tokenize", *model_, "hello", "--json"}), 0);
  EXPECT_EQ(j["command"], "tokenize");
  EXPECT_EQ(j["token_count"], j["ids"].size());
}

TEST_F(JsonSchemaCliTest, PlanReport) {
  const json j = Report(RunZcpack({"plan", *model_, "--context", "64", "--json"}), 0);
  EXPECT_EQ(j["command"], "plan");
  EXPECT_TRUE(j["batch"].is_null());  // no --batch: each context whole
  EXPECT_EQ(j["contexts"][0]["batch"], 64);
}

TEST_F(JsonSchemaCliTest, BenchReports) {
  const std::vector<std::string> bench = {"bench", *model_, "--warm", "--runs", "1", "--tokens",
                                          "2", "--loaders", "zcpack,mmap", "--budget", "off"};
  std::vector<std::string> args = bench;
  args.insert(args.end(), {"--json", "--targets"});
  const json j = Report(RunZcpack(args), 0);
  EXPECT_EQ(j["command"], "bench");
  EXPECT_GE(j["method"]["threads"].get<int>(), 1);
  EXPECT_TRUE(j.contains("targets"));

  args = bench;
  args.insert(args.end(), {"--output", "jsonl"});
  const CliResult r = RunZcpack(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u) << r.out;  // one per row
  for (const std::string& line : lines) {
    const json record = json::parse(line);
    const std::vector<std::string> errors = schema_->Validate(record, "bench_jsonl_record");
    EXPECT_TRUE(errors.empty()) << absl::StrJoin(errors, "\n") << "\n" << line;
  }
}

// Failures: one error object on stdout, the exit code unchanged, the
// message on stderr as well.
TEST_F(JsonSchemaCliTest, MissingInputIsASystemErrorNamingTheFile) {
  const std::string missing = dir_->File("missing.zcpack");
  for (const std::string command : {"inspect", "verify", "plan", "bench", "export"}) {
    std::vector<std::string> args = {command, missing, "--json"};
    if (command == "export") args.insert(args.end(), {"-o", dir_->File("x.gguf")});
    const json e = Error(args, 3, "system");
    EXPECT_EQ(e["file"], missing) << command;
    EXPECT_TRUE(e["tensor"].is_null()) << command;
  }
  const json e = Error({"convert", dir_->File("missing"), "-o", dir_->File("y.zcpack"), "--json"}, 3,
                       "system");
  EXPECT_EQ(e["file"], dir_->File("missing"));
  // Not the command's input: the --against source it could not read.
  const json against =
      Error({"verify", *model_, "--against", dir_->File("no-source"), "--json"}, 3, "system");
  EXPECT_EQ(against["file"], dir_->File("no-source"));
}

TEST_F(JsonSchemaCliTest, AChecksumMismatchNamesTheTensor) {
  std::vector<uint8_t> bytes = *ReadFileBytes(*model_);
  const json table = json::parse(RunZcpack({"inspect", *model_, "--json"}).out);
  const json& t = table["tensors"][1];
  bytes[t["offset"].get<uint64_t>() + t["bytes"].get<uint64_t>() / 2] ^= 0x01;
  const std::string flipped = dir_->File("flipped.zcpack");
  ASSERT_TRUE(WriteFileBytes(flipped, bytes).ok());

  // inspect --checksums: the reader's DataLoss, with its tensor.
  const json e = Error({"inspect", flipped, "--checksums", "--json"}, 1, "input_rejected");
  EXPECT_EQ(e["file"], flipped);
  EXPECT_EQ(e["tensor"], t["name"]);
  EXPECT_EQ(e["status"], "DATA_LOSS");

  // verify: the report, with the error in it (one object).
  const json v = Report(RunZcpack({"verify", flipped, "--json"}), 1);
  EXPECT_FALSE(v["sound"].get<bool>());
  EXPECT_EQ(v["error"]["code"], "input_rejected");
  EXPECT_EQ(v["error"]["tensor"], t["name"]);
}

// A reader's per-tensor failure names the file and the tensor (the GGUF
// reader: a tensor offset off the file's alignment).
TEST_F(JsonSchemaCliTest, AReaderRejectingATensorNamesIt) {
  GgufTestWriter w;
  w.AddString("general.architecture", "llama")
      .AddTensor("blk.0.attn_norm.weight", /*F32*/ 0, {8}, std::vector<uint8_t>(32, 0), /*offset=*/4);
  const std::string bad = dir_->File("misaligned.gguf");
  ASSERT_TRUE(WriteFileBytes(bad, w.Build()).ok());
  const json e =
      Error({"convert", bad, "-o", dir_->File("never.zcpack"), "--json"}, 1, "input_rejected");
  EXPECT_EQ(e["file"], bad);
  EXPECT_EQ(e["tensor"], "blk.0.attn_norm.weight");
  EXPECT_EQ(e["status"], "DATA_LOSS");
}

TEST_F(JsonSchemaCliTest, UsageErrorsAreJsonToo) {
  // Found while parsing the line: no file known.
  EXPECT_TRUE(Error({"inspect", *model_, "--json", "--bogus"}, 2, "usage")["file"].is_null());
  EXPECT_TRUE(Error({"synth", "--shape", "huge", "-o", dir_->File("s"), "--json"}, 2, "usage")["file"]
                  .is_null());
  // Found by the command's checks: the input named.
  EXPECT_EQ(Error({"run", *model_, "--tokens", "999999", "--json"}, 2, "usage")["file"], *model_);
  EXPECT_EQ(Error({"bench", *model_, "--output", "xml", "--json"}, 2, "usage")["file"], *model_);
}

TEST_F(JsonSchemaCliTest, InputRejectedForEachReader) {
  const std::string text = dir_->File("notes.txt");
  ASSERT_TRUE(WriteFileBytes(text, std::vector<uint8_t>(100, 'x')).ok());
  EXPECT_EQ(Error({"tokenize", text, "hello", "--json"}, 1, "input_rejected")["file"], text);
  EXPECT_EQ(Error({"inspect", text, "--json"}, 1, "input_rejected")["file"], text);
  Error({"run", text, "--tokens", "1", "--json"}, 1, "input_rejected");
  const std::string gguf = dir_->File("rejected.gguf");
  ASSERT_EQ(RunZcpack({"export", *model_, "-o", gguf}).exit_code, 0);
  Error({"export", gguf, "-o", dir_->File("z.gguf"), "--json"}, 1, "input_rejected");
}

TEST_F(JsonSchemaCliTest, WithoutJsonAFailurePrintsNothingOnStdout) {
  const CliResult r = RunZcpack({"inspect", dir_->File("missing.zcpack")});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(r.err, HasSubstr("missing.zcpack"));
}

// docs/JSON.md documents every key the schema has.
TEST(JsonSchemaDocTest, JsonMdNamesEveryKeyOfTheSchema) {
  std::ifstream schema_in(ZCPACK_SCHEMA_PATH);
  const json schema = json::parse(schema_in);
  std::ifstream doc_in(ZCPACK_JSON_DOC_PATH);
  const std::string doc((std::istreambuf_iterator<char>(doc_in)), std::istreambuf_iterator<char>());
  std::vector<std::string> missing;
  std::vector<const json*> pending = {&schema};
  while (!pending.empty()) {
    const json& s = *pending.back();
    pending.pop_back();
    if (!s.is_object()) continue;
    if (s.contains("properties")) {
      for (auto it = s["properties"].begin(); it != s["properties"].end(); ++it) {
        const std::string& key = it.key();
        if (doc.find("`" + key + "`") == std::string::npos &&
            doc.find("." + key + "`") == std::string::npos) {
          missing.push_back(key);
        }
        pending.push_back(&it.value());
      }
    }
    for (const char* child : {"items", "additionalProperties"}) {
      if (s.contains(child)) pending.push_back(&s[child]);
    }
    if (s.contains("$defs")) {
      for (const json& d : s["$defs"]) pending.push_back(&d);
    }
  }
  EXPECT_TRUE(missing.empty()) << absl::StrJoin(missing, ", ");
}

// The validator itself: each keyword of the subset refuses what it should,
// and a schema outside the subset is refused when parsed.
TEST(JsonSchemaValidatorTest, EachKeywordRejects) {
  const json schema = json::parse(R"({
    "oneOf": [{"$ref": "#/$defs/a"}, {"$ref": "#/$defs/b"}],
    "$defs": {
      "a": {"type": "object", "additionalProperties": false, "required": ["kind", "n"],
            "properties": {"kind": {"const": "a"}, "n": {"type": "integer", "minimum": 1},
                           "tags": {"type": "array", "items": {"enum": ["x", "y"]}},
                           "maybe": {"type": ["string", "null"]},
                           "map": {"type": "object", "additionalProperties": {"type": "boolean"}}}},
      "b": {"type": "object", "required": ["kind"], "properties": {"kind": {"const": "b"}}}
    }})");
  absl::StatusOr<JsonSchema> parsed = JsonSchema::Parse(schema);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const auto errors = [&](const std::string& text) { return parsed->Validate(json::parse(text)); };
  EXPECT_THAT(errors(R"({"kind": "a", "n": 2, "tags": ["x"], "maybe": null, "map": {"k": true}})"),
              ::testing::IsEmpty());
  EXPECT_THAT(errors(R"({"kind": "b", "anything": 1})"), ::testing::IsEmpty());
  for (const char* bad : {
           R"({"kind": "a"})",                          // required
           R"({"kind": "a", "n": 0})",                  // minimum
           R"({"kind": "a", "n": 1.5})",                // integer
           R"({"kind": "a", "n": 1, "extra": 1})",      // additionalProperties false
           R"({"kind": "a", "n": 1, "tags": ["z"]})",   // enum in items
           R"({"kind": "a", "n": 1, "maybe": 3})",      // type list
           R"({"kind": "a", "n": 1, "map": {"k": 1}})", // additionalProperties schema
           R"({"kind": "c"})",                          // const: no branch
           R"([])"}) {
    EXPECT_THAT(errors(bad), ::testing::Not(::testing::IsEmpty())) << bad;
  }
  // Both branches match: oneOf wants exactly one.
  const json both = json::parse(R"({"oneOf": [{"type": "object"}, {"type": "object"}]})");
  EXPECT_THAT(JsonSchema::Parse(both)->Validate(json::object()), ::testing::SizeIs(1));

  EXPECT_FALSE(JsonSchema::Parse(json::parse(R"({"pattern": "x"})")).ok());
  EXPECT_FALSE(JsonSchema::Parse(json::parse(R"({"$ref": "#/$defs/none"})")).ok());
  EXPECT_FALSE(JsonSchema::Parse(json::parse(R"({"type": "text"})")).ok());
  EXPECT_FALSE(JsonSchema::Parse(json::parse(
      R"({"type": "object", "required": ["x"], "properties": {}})")).ok());
}

}  // namespace
}  // namespace zcpack::testing

// End-to-end tests of `zcpack convert`, run as a user would run it: synthetic
// and hand-written checkpoints in, containers out, checked with `inspect`.
#include <dirent.h>
#include <grp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/converter/gguf_test_writer.h"
#include "tests/converter/safetensors_test_writer.h"
#include "tests/testing/container_fixtures.h"
#include "tests/tools/cli_runner.h"
#include "zcpack/converter/architecture.h"
#include "zcpack/format/threads.h"

namespace zcpack::testing {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;

// A small llama whose rows (64) fit q4_0 blocks but not q4_k super-blocks.
format::ModelInfo SmallLlama() {
  format::ModelInfo m;
  m.set_architecture("llama");
  m.set_hidden_size(64);
  m.set_num_layers(2);
  m.set_num_heads(4);
  m.set_num_kv_heads(2);
  m.set_head_dim(16);
  m.set_intermediate_size(128);
  m.set_vocab_size(96);
  m.set_rope_theta(10000.0);
  m.set_rms_norm_eps(1e-5);
  m.set_max_position_embeddings(256);
  m.set_bos_token_id(1);
  m.set_eos_token_id(2);
  return m;
}

format::ModelInfo SmallQwen2() {
  format::ModelInfo m = SmallLlama();
  m.set_architecture("qwen2");
  m.set_attention_bias(true);
  m.set_tied_embeddings(true);
  m.set_rope_theta(1000000.0);
  return m;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// Names in `dir` that look like a writer's temporary file.
std::vector<std::string> TempFiles(const std::string& dir) {
  std::vector<std::string> found;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      if (std::string(e->d_name).find("zcpack-tmp") != std::string::npos) found.push_back(e->d_name);
    }
    ::closedir(d);
  }
  return found;
}

class ConvertTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir("convert"); }
  void TearDown() override { RemoveTree(dir_); }

  std::string Synth(const std::string& name, const std::string& dtype = "f16") {
    const std::string path = dir_ + "/" + name;
    const CliResult r = RunZcpack({"synth", "--shape", "tiny", "--dtype", dtype, "-o", path});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return path;
  }

  json Inspect(const std::string& path) {
    const CliResult r = RunZcpack({"inspect", path, "--json", "--checksums"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json::parse(r.out);
  }

  // Runs a conversion expected to fail; checks the exit code, that the
  // message mentions `needle`, and that nothing is left at the destination.
  void ExpectConvertFails(const std::string& source, int exit_code, const std::string& needle,
                          void (*setup)() = nullptr) {
    const std::string out = dir_ + "/out.zcpack";
    const CliResult r = RunZcpack({"convert", source, "-o", out}, setup);
    EXPECT_EQ(r.exit_code, exit_code) << r.err;
    EXPECT_THAT(r.err, HasSubstr(needle));
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
    EXPECT_FALSE(Exists(out));
    EXPECT_THAT(TempFiles(dir_), ::testing::IsEmpty());
  }

  std::string dir_;
};

TEST_F(ConvertTest, TinyToQ4_0InForwardOrderAligned) {
  const std::string model = Synth("tiny");
  const std::string out = dir_ + "/tiny.zcpack";
  const CliResult r = RunZcpack({"convert", model, "-o", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("wrote " + out));
  const json j = Inspect(out);
  EXPECT_EQ(j["alignment"], 16384);
  EXPECT_EQ(j["model"]["architecture"], "llama");
  EXPECT_EQ(j["model"]["num_layers"], 2);
  const auto& t = j["tensors"];
  ASSERT_EQ(t.size(), 21u);
  // Forward-pass order: embedding, layer 0 in execution order, ..., norm, head.
  const std::vector<std::string> first_layer = {
      "model.embed_tokens.weight",
      "model.layers.0.input_layernorm.weight",
      "model.layers.0.self_attn.q_proj.weight",
      "model.layers.0.self_attn.k_proj.weight",
      "model.layers.0.self_attn.v_proj.weight",
      "model.layers.0.self_attn.o_proj.weight",
      "model.layers.0.post_attention_layernorm.weight",
      "model.layers.0.mlp.gate_proj.weight",
      "model.layers.0.mlp.up_proj.weight",
      "model.layers.0.mlp.down_proj.weight",
      "model.layers.1.input_layernorm.weight"};
  for (size_t i = 0; i < first_layer.size(); ++i) EXPECT_EQ(t[i]["name"], first_layer[i]);
  EXPECT_EQ(t[19]["name"], "model.norm.weight");
  EXPECT_EQ(t[20]["name"], "lm_head.weight");
  uint64_t previous = 0;
  for (const auto& e : t) {
    EXPECT_EQ(e["offset"].get<uint64_t>() % 16384, 0u) << e["name"];
    EXPECT_GT(e["offset"].get<uint64_t>(), previous);
    previous = e["offset"];
    if (e["name"] == "lm_head.weight") {
      EXPECT_EQ(e["dtype"], "q8_0");  // the output head, at higher precision
      EXPECT_GT(e["quant_stats"]["snr_db"].get<double>(), 35.0);
    } else if (e["shape"].size() == 2) {
      EXPECT_EQ(e["dtype"], "q4_0") << e["name"];
      EXPECT_GT(e["quant_stats"]["snr_db"].get<double>(), 12.0) << e["name"];
      EXPECT_GT(e["quant_stats"]["rmse"].get<double>(), 0.0) << e["name"];
    } else {
      EXPECT_EQ(e["dtype"], "f16") << e["name"];
      EXPECT_FALSE(e.contains("quant_stats")) << e["name"];
    }
    EXPECT_EQ(e["source_dtype"], "f16");
  }
  EXPECT_EQ(j["layers"].size(), 2u);
}

TEST_F(ConvertTest, TinyToQ4_KWithSmallAlignment) {
  const std::string model = Synth("tiny");
  const std::string out = dir_ + "/tiny.q4k.zcpack";
  const CliResult r =
      RunZcpack({"convert", model, "-o", out, "--quant", "q4_k", "--alignment", "4096"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = Inspect(out);
  EXPECT_EQ(j["alignment"], 4096);
  EXPECT_EQ(j["tensors"][2]["dtype"], "q4_k");
  EXPECT_EQ(j["tensors"][2]["bytes"], 256 * 256 / 256 * 144);
}

TEST_F(ConvertTest, Bf16AndF32Inputs) {
  for (const std::string dtype : {"bf16", "f32"}) {
    const std::string model = Synth("tiny-" + dtype, dtype);
    const std::string out = dir_ + "/tiny-" + dtype + ".zcpack";
    const CliResult r = RunZcpack({"convert", model, "-o", out});
    ASSERT_EQ(r.exit_code, 0) << dtype << ": " << r.err;
    const json j = Inspect(out);
    EXPECT_EQ(j["tensors"][0]["source_dtype"], dtype);
    EXPECT_EQ(j["tensors"][0]["dtype"], "q4_0");
    // Norms keep their source dtype; the output head is stored as q8_0.
    EXPECT_EQ(j["tensors"][1]["dtype"], dtype);
    EXPECT_EQ(j["tensors"][20]["dtype"], "q8_0");
  }
}

TEST_F(ConvertTest, ShardedInputWithIndex) {
  const std::string model = dir_ + "/sharded";
  ::mkdir(model.c_str(), 0755);
  ASSERT_TRUE(WriteTinyHfModel(model, SmallLlama(), format::DTYPE_F16, 3).ok());
  ASSERT_TRUE(Exists(model + "/model.safetensors.index.json"));
  const std::string out = dir_ + "/sharded.zcpack";
  const CliResult r = RunZcpack({"convert", model, "-o", out, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json report = json::parse(r.out);
  int shards = 0;
  for (const auto& s : report["sources"]) {
    shards += s.get<std::string>().find("-of-00003.safetensors") != std::string::npos;
  }
  EXPECT_EQ(shards, 3);
  const json j = Inspect(out);
  EXPECT_EQ(j["tensors"].size(), 21u);
  EXPECT_EQ(j["tokenizers"].size(), 1u);  // tokenizer.json is carried
}

TEST_F(ConvertTest, GgufInputRecordsInterleavedRope) {
  const std::string gguf = dir_ + "/tiny.gguf";
  ASSERT_TRUE(WriteFileBytes(gguf, TinyLlamaGguf(SmallLlama(), format::DTYPE_F16)).ok());
  const std::string out = dir_ + "/from-gguf.zcpack";
  const CliResult r = RunZcpack({"convert", gguf, "-o", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = Inspect(out);
  EXPECT_EQ(j["model"]["rope_layout"], "ROPE_LAYOUT_INTERLEAVED");
  EXPECT_EQ(j["tensors"][0]["name"], "token_embd.weight");
  EXPECT_EQ(j["tensors"][1]["name"], "blk.0.attn_norm.weight");
  EXPECT_EQ(j["tensors"][2]["name"], "blk.0.attn_q.weight");
  EXPECT_EQ(j["tensors"][2]["dtype"], "q4_0");
  EXPECT_EQ(j["tokenizers"][0]["kind"], "gguf-metadata");
}

TEST_F(ConvertTest, Qwen2BiasesAndTiedEmbeddings) {
  const std::string model = dir_ + "/qwen2";
  ::mkdir(model.c_str(), 0755);
  ASSERT_TRUE(WriteTinyHfModel(model, SmallQwen2(), format::DTYPE_BF16).ok());
  const std::string out = dir_ + "/qwen2.zcpack";
  const CliResult r = RunZcpack({"convert", model, "-o", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = Inspect(out);
  EXPECT_EQ(j["model"]["architecture"], "qwen2");
  EXPECT_EQ(j["model"]["attention_bias"], true);
  EXPECT_EQ(j["model"]["tied_embeddings"], true);
  const auto& t = j["tensors"];
  // embedding, then layer 0: norm, q, q bias, k, k bias, v, v bias, o, ...
  EXPECT_EQ(t[0]["name"], "model.embed_tokens.weight");
  EXPECT_EQ(t[0]["dtype"], "q8_0");  // tied: it is the output head too
  EXPECT_EQ(t[3]["name"], "model.layers.0.self_attn.q_proj.bias");
  EXPECT_EQ(t[3]["layer"], 0);
  EXPECT_EQ(t[3]["dtype"], "bf16");
  EXPECT_EQ(t[5]["name"], "model.layers.0.self_attn.k_proj.bias");
  EXPECT_EQ(t[7]["name"], "model.layers.0.self_attn.v_proj.bias");
  for (const auto& e : t) EXPECT_NE(e["name"], "lm_head.weight");
}

TEST_F(ConvertTest, RowsThatDoNotFitBlocksFallBackToF16AndSaySo) {
  const std::string model = dir_ + "/small";
  ::mkdir(model.c_str(), 0755);
  ASSERT_TRUE(WriteTinyHfModel(model, SmallLlama(), format::DTYPE_F16).ok());
  const std::string out = dir_ + "/small.q4k.zcpack";
  const CliResult text = RunZcpack({"convert", model, "-o", out, "--quant", "q4_k"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_THAT(text.out, HasSubstr("not a multiple of the q4_k block size 256; stored as f16"));
  const CliResult r = RunZcpack({"convert", model, "-o", out, "--quant", "q4_k", "--json", "--force"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json report = json::parse(r.out);
  EXPECT_EQ(report["tensors"][2]["dtype"], "f16");
  EXPECT_THAT(report["tensors"][2]["fallback"].get<std::string>(), HasSubstr("row length 64"));
}

// With a q4 target the output head is stored as q8_0 (ggml's block_q8_0:
// 34 bytes per 32 weights) and reports its error like every converted tensor.
TEST_F(ConvertTest, Q4TargetsStoreTheOutputHeadAsQ8_0) {
  const std::string model = Synth("tiny");
  for (const std::string quant : {"q4_0", "q4_k"}) {
    const std::string out = dir_ + "/head." + quant + ".zcpack";
    const CliResult r = RunZcpack({"convert", model, "-o", out, "--quant", quant, "--json"});
    ASSERT_EQ(r.exit_code, 0) << quant << ": " << r.err;
    const json report = json::parse(r.out);
    const json& head = report["tensors"][20];
    ASSERT_EQ(head["name"], "lm_head.weight");
    EXPECT_EQ(head["dtype"], "q8_0") << quant;
    EXPECT_GT(head["quant_stats"]["snr_db"].get<double>(), 35.0) << quant;
    EXPECT_GT(head["quant_stats"]["rmse"].get<double>(), 0.0) << quant;
    EXPECT_GT(head["quant_stats"]["max_abs_error"].get<double>(), 0.0) << quant;
    EXPECT_FALSE(head.contains("fallback")) << quant;

    const json j = Inspect(out);
    const json& entry = j["tensors"][20];
    EXPECT_EQ(entry["name"], "lm_head.weight");
    EXPECT_EQ(entry["dtype"], "q8_0") << quant;
    EXPECT_EQ(entry["shape"], json::array({512, 256}));
    EXPECT_EQ(entry["bytes"], 512 * 256 / 32 * 34) << quant;
    EXPECT_EQ(entry["quant_stats"]["snr_db"], head["quant_stats"]["snr_db"]) << quant;
    EXPECT_EQ(j["tensors"][2]["dtype"], quant);  // the layers keep the target
  }
}

TEST_F(ConvertTest, KeepF16OnTheHeadKeepsItF16) {
  const std::string gguf = dir_ + "/tiny.gguf";
  ASSERT_TRUE(WriteFileBytes(gguf, TinyLlamaGguf(SmallLlama(), format::DTYPE_F16)).ok());
  const std::string out = dir_ + "/keep-head.zcpack";
  const CliResult r = RunZcpack({"convert", gguf, "-o", out, "--keep-f16", "output*"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = Inspect(out);
  const json& head = j["tensors"][j["tensors"].size() - 1];
  EXPECT_EQ(head["name"], "output.weight");
  EXPECT_EQ(head["dtype"], "f16");
  EXPECT_FALSE(head.contains("quant_stats"));
  EXPECT_EQ(j["tensors"][2]["dtype"], "q4_0");
}

// --output-quant q4_0 with --quant q4_0: every matrix in q4_0, as
// llama-quantize --pure writes it; recorded in the provenance.
TEST_F(ConvertTest, OutputQuantStoresTheHeadInTheGivenType) {
  const std::string model = Synth("tiny");
  const std::string out = dir_ + "/pure.zcpack";
  const CliResult r = RunZcpack({"convert", model, "-o", out, "--output-quant", "q4_0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = Inspect(out);
  EXPECT_EQ(j["tensors"][20]["name"], "lm_head.weight");
  EXPECT_EQ(j["tensors"][20]["dtype"], "q4_0");
  const CliResult bad = RunZcpack({"convert", model, "-o", dir_ + "/bad.zcpack", "--output-quant", "q9"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_THAT(bad.err, HasSubstr("q9"));
}

TEST_F(ConvertTest, Q8_0AsTheWholeModelTarget) {
  const std::string model = Synth("tiny");
  const std::string out = dir_ + "/tiny.q8.zcpack";
  const CliResult r = RunZcpack({"convert", model, "-o", out, "--quant", "q8_0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("8.50 bits/weight"));
  const json j = Inspect(out);
  for (const auto& e : j["tensors"]) {
    if (e["shape"].size() == 2) {
      EXPECT_EQ(e["dtype"], "q8_0") << e["name"];
      EXPECT_GT(e["quant_stats"]["snr_db"].get<double>(), 35.0) << e["name"];
    } else {
      EXPECT_EQ(e["dtype"], "f16") << e["name"];
    }
  }
  const CliResult text = RunZcpack({"inspect", out});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_THAT(text.out, HasSubstr(" q8_0  [512, 256]"));
}

// --layout: row groups by default for the quantized matrices, recorded per
// tensor (inspect's JSON field and text summary) and in the provenance;
// row-major on request. verify --against passes for both.
TEST_F(ConvertTest, LayoutRowGroupsByDefaultRowMajorOnRequest) {
  const std::string model = Synth("tiny");
  for (const std::string layout : {"", "row-groups", "row-major"}) {
    const std::string out = dir_ + "/tiny." + (layout.empty() ? "default" : layout) + ".zcpack";
    std::vector<std::string> args = {"convert", model, "-o", out};
    if (!layout.empty()) args.insert(args.end(), {"--layout", layout});
    const CliResult r = RunZcpack(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::string want = layout.empty() ? "row-groups" : layout;
    const json j = Inspect(out);
    EXPECT_EQ(j["provenance"]["options"]["matrix_layout"], want);
    size_t grouped = 0;
    for (const auto& e : j["tensors"]) {
      const bool matrix = e["shape"].size() == 2 && e["role"] != "token_embedding";
      EXPECT_EQ(e["layout"], matrix ? want : "row-major") << e["name"];
      grouped += e["layout"] == "row-groups";
    }
    EXPECT_EQ(grouped, want == "row-groups" ? 15u : 0u);
    const CliResult text = RunZcpack({"inspect", out});
    ASSERT_EQ(text.exit_code, 0) << text.err;
    EXPECT_THAT(text.out, HasSubstr(want == "row-groups"
                                        ? "layout      15 tensors in 16-row groups, 6 row-major\n"
                                        : "layout      0 tensors in 16-row groups, 21 row-major\n"));
    const CliResult verify = RunZcpack({"verify", out, "--against", model});
    EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  }
}

TEST_F(ConvertTest, BadLayoutIsAUsageError) {
  const std::string model = Synth("tiny");
  const std::string out = dir_ + "/bad.zcpack";
  const CliResult r = RunZcpack({"convert", model, "-o", out, "--layout", "columns"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--layout"));
  EXPECT_THAT(r.err, HasSubstr("row-groups or row-major"));
  EXPECT_FALSE(Exists(out));
}

TEST_F(ConvertTest, KeepF16PatternsAreRepeatable) {
  const std::string model = Synth("tiny");
  const std::string out = dir_ + "/keep.zcpack";
  const CliResult r = RunZcpack({"convert", model, "-o", out, "--keep-f16", "*.q_proj.weight",
                                 "--keep_f16", "model.embed_tokens.weight"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = Inspect(out);
  EXPECT_EQ(j["tensors"][0]["dtype"], "f16");
  EXPECT_EQ(j["tensors"][2]["dtype"], "f16");
  EXPECT_EQ(j["tensors"][3]["dtype"], "q4_0");
}

TEST_F(ConvertTest, SameBytesAtAnyThreadCount) {
  const std::string model = Synth("tiny");
  ASSERT_EQ(RunZcpack({"convert", model, "-o", dir_ + "/t1.zcpack", "--threads", "1"}).exit_code, 0);
  ASSERT_EQ(RunZcpack({"convert", model, "-o", dir_ + "/t2.zcpack", "--threads", "2"}).exit_code, 0);
  ASSERT_EQ(RunZcpack({"convert", model, "-o", dir_ + "/t3.zcpack", "--threads", "3"}).exit_code, 0);
  const std::string a = ReadFile(dir_ + "/t1.zcpack");
  EXPECT_EQ(a, ReadFile(dir_ + "/t2.zcpack"));
  EXPECT_EQ(a, ReadFile(dir_ + "/t3.zcpack"));
}

// Two synth runs into one folder used to share one fixed temporary name and
// could leave a checkpoint that matched neither seed.
TEST_F(ConvertTest, ConcurrentSynthIntoOneFolderGivesOneWholeCheckpoint) {
  for (const char* seed : {"1", "2"}) {
    ASSERT_EQ(RunZcpack({"synth", "--shape", "stories15m", "--seed", seed, "-o",
                         dir_ + "/seed" + seed})
                  .exit_code,
              0);
  }
  const std::string a = ReadFile(dir_ + "/seed1/model.safetensors");
  const std::string b = ReadFile(dir_ + "/seed2/model.safetensors");
  ASSERT_NE(a, b);
  const std::string shared = dir_ + "/shared";
  const RunningZcpack one =
      StartZcpack({"synth", "--shape", "stories15m", "--seed", "1", "--force", "-o", shared});
  const RunningZcpack two =
      StartZcpack({"synth", "--shape", "stories15m", "--seed", "2", "--force", "-o", shared});
  EXPECT_EQ(FinishZcpack(one).exit_code, 0);
  EXPECT_EQ(FinishZcpack(two).exit_code, 0);
  const std::string result = ReadFile(shared + "/model.safetensors");
  EXPECT_TRUE(result == a || result == b) << "a checkpoint of neither seed";
  EXPECT_THAT(TempFiles(shared), ::testing::IsEmpty());
}

// A writer killed with SIGKILL leaves its temporary file; it is recognisable
// (it names its process) and the next convert into the folder removes it.
TEST_F(ConvertTest, TempFileLeftByKillIsRemovedByTheNextConvert) {
  const std::string model = Synth("tiny");
  const std::string out = dir_ + "/out";
  ASSERT_EQ(::mkdir(out.c_str(), 0755), 0);
  const RunningZcpack running = StartZcpack(
      {"convert", model, "-o", out + "/m.zcpack", "--threads", "1", "--quant", "q4_k"});
  // Wait for the writer's temporary file, then kill the writer.
  for (int i = 0; i < 20000 && TempFiles(out).empty(); ++i) ::usleep(100);
  ::kill(running.pid, SIGKILL);
  const CliResult killed = FinishZcpack(running);
  const std::vector<std::string> left = TempFiles(out);
  if (killed.exit_code == 0 || left.empty()) GTEST_SKIP() << "convert finished before the kill";
  ASSERT_EQ(left.size(), 1u);
  EXPECT_THAT(left[0], ::testing::StartsWith(".m.zcpack.zcpack-tmp-" +
                                             std::to_string(running.pid) + "-"));

  const CliResult r = RunZcpack({"convert", model, "-o", out + "/m.zcpack"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("note: removed " + out + "/" + left[0] +
                               ", a temporary file left by a writer that is gone\n"));
  EXPECT_THAT(TempFiles(out), ::testing::IsEmpty());
}

// The same with a made-up leftover: a process id that is gone, no lock.
TEST_F(ConvertTest, StaleTempFileOfAGoneProcessIsRemovedWithANote) {
  const std::string model = Synth("tiny");
  const pid_t gone = ::fork();
  if (gone == 0) ::_exit(0);
  ::waitpid(gone, nullptr, 0);
  const std::string stale = ".x.zcpack.zcpack-tmp-" + std::to_string(gone) + "-AbCd12";
  std::ofstream(dir_ + "/" + stale) << "left behind";
  const CliResult r = RunZcpack({"convert", model, "-o", dir_ + "/m.zcpack", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["notes"][0],
            "removed " + dir_ + "/" + stale + ", a temporary file left by a writer that is gone");
  EXPECT_FALSE(Exists(dir_ + "/" + stale));
}

TEST_F(ConvertTest, LongestLegalOutputNameWorks) {
  const std::string model = Synth("tiny");
  const std::string out = dir_ + "/" + std::string(240, 'o') + ".zcpack";  // 247 bytes
  const CliResult r = RunZcpack({"convert", model, "-o", out, "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Exists(out));
}

// More threads than CPUs only wait for a core and hold buffers: capped.
TEST_F(ConvertTest, ThreadsAreCappedAtTheCpus) {
  const std::string model = Synth("tiny");
  const CliResult r =
      RunZcpack({"convert", model, "-o", dir_ + "/t.zcpack", "--threads", "1024", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["threads"], format::AvailableCpus());
}

TEST_F(ConvertTest, RefusesToOverwriteWithoutForceAndNeverTheInput) {
  const std::string model = Synth("tiny");
  const std::string out = dir_ + "/once.zcpack";
  ASSERT_EQ(RunZcpack({"convert", model, "-o", out}).exit_code, 0);
  const CliResult again = RunZcpack({"convert", model, "-o", out});
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_THAT(again.err, HasSubstr("--force"));
  EXPECT_EQ(RunZcpack({"convert", model, "-o", out, "--force"}).exit_code, 0);
  const std::string weights = model + "/model.safetensors";
  const std::string before = ReadFile(weights);
  const CliResult self = RunZcpack({"convert", model, "-o", weights, "--force"});
  EXPECT_EQ(self.exit_code, 2);
  EXPECT_THAT(self.err, HasSubstr("is the input file"));
  EXPECT_EQ(ReadFile(weights), before);
}

// Every mistake on the command line is exit code 2 with the usage line, as
// in verify and bench (these were 1, "the input is unsound"), and is found
// before the source is read: the source here does not exist, which would be
// exit code 3.
TEST_F(ConvertTest, UsageErrorsExitTwoBeforeTheSourceIsRead) {
  const std::string source = dir_ + "/absent";
  const std::string out = dir_ + "/out.zcpack";
  const std::vector<std::vector<std::string>> cases = {
      {"convert"},
      {"convert", source},
      {"convert", source, "-o", out, "--quant", "q9"},
      {"convert", source, "-o", out, "--quant", "bf16"},
      {"convert", source, "-o", out, "--output-quant", "q9"},
      {"convert", source, "-o", out, "--output-quant", "bf16"},
      {"convert", source, "-o", out, "--alignment", "1000"},
      {"convert", source, "-o", out, "--alignment", "4194304"},
      {"convert", source, "-o", out, "--alignment", "-1"},
      {"convert", source, "-o", out, "--threads", "many"},
      {"convert", source, "-o", out, "--threads", "5000"},
      {"convert", source, "-o", out, "--layout", "columns"},
      {"convert", source, "-o", out, "--keep-f16", "lm_\xff*"},
      {"convert", source, "-o", out, "--quiet=perhaps"},
      {"convert", source, "-o", out, "--frobnicate"},
      {"convert", source, "-o"},
  };
  for (const auto& args : cases) {
    const CliResult r = RunZcpack(args);
    EXPECT_EQ(r.exit_code, 2) << ::testing::PrintToString(args) << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr("Usage: zcpack convert")) << ::testing::PrintToString(args);
  }
  EXPECT_FALSE(Exists(out));
  const CliResult quant = RunZcpack({"convert", source, "-o", out, "--quant", "q9"});
  EXPECT_THAT(quant.err, HasSubstr("--quant q9: 'q9' is not a type zcpack converts to"));
  EXPECT_EQ(RunZcpack({"convert", source, "-o", out}).exit_code, 3);
}

// An output path that is not UTF-8 used to abort --json (uncaught nlohmann
// exception, SIGABRT) after the container had been written; the bad byte is
// now the text \xff, the report is valid JSON and the exit code 0.
TEST_F(ConvertTest, JsonEscapesAnOutputPathThatIsNotUtf8) {
  const std::string model = Synth("tiny");
  const std::string out = dir_ + "/b\xff.zcpack";
  const CliResult r = RunZcpack({"convert", model, "-o", out, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["output"], dir_ + "/b\\xff.zcpack");
  EXPECT_FALSE(j["tensors"].empty());
  EXPECT_TRUE(Exists(out));
}

// ---- Bad input: a clear one-line message, a documented code, no output. ----

class BadInputTest : public ConvertTest {
 protected:
  // A complete small model folder whose model.safetensors is `weights`.
  std::string ModelWith(const std::vector<uint8_t>& weights) {
    const std::string model = dir_ + "/bad";
    ::mkdir(model.c_str(), 0755);
    std::ofstream(model + "/config.json") << HfConfigJson(SmallLlama());
    EXPECT_TRUE(WriteFileBytes(model + "/model.safetensors", weights).ok());
    return model;
  }

  // A valid writer for SmallLlama(), optionally without tensor `skip` or
  // with tensor `reshape` given a different shape.
  SafetensorsTestWriter ValidWriter(const std::string& skip = "", const std::string& reshape = "") {
    SafetensorsTestWriter w;
    const auto expected = converter::ExpectedTensors(SmallLlama());
    for (const auto& e : *expected) {
      const std::string name = converter::TensorName(e.role, e.layer, converter::TensorNaming::kHuggingFace);
      if (name == skip) continue;
      std::vector<uint64_t> shape = e.shape;
      if (name == reshape) shape.back() += 32;
      uint64_t n = 1;
      for (uint64_t d : shape) n *= d;
      w.AddFloatTensor(name, format::DTYPE_F16, shape, PseudoRandomFloats(n, n));
    }
    return w;
  }
};

TEST_F(BadInputTest, TruncatedSafetensors) {
  std::vector<uint8_t> bytes = ValidWriter().Build();
  bytes.resize(bytes.size() - 100);
  ExpectConvertFails(ModelWith(bytes), 1, "model.safetensors");
}

TEST_F(BadInputTest, HeaderLengthBeyondTheFile) {
  std::vector<uint8_t> bytes = ValidWriter().Build();
  bytes[6] = 0x01;  // header length ~2^48
  ExpectConvertFails(ModelWith(bytes), 1, "model.safetensors");
}

TEST_F(BadInputTest, OverlappingOffsets) {
  SafetensorsTestWriter w = ValidWriter();
  w.AddTensor("extra.weight", "F16", {4}, std::vector<uint8_t>(8, 0), std::make_pair(0, 8));
  ExpectConvertFails(ModelWith(w.Build()), 1, "overlap");
}

TEST_F(BadInputTest, ByteCountWrongForShape) {
  SafetensorsTestWriter w = ValidWriter();
  w.AddTensor("extra.weight", "F16", {4}, std::vector<uint8_t>(10, 0));
  ExpectConvertFails(ModelWith(w.Build()), 1, "extra.weight");
}

TEST_F(BadInputTest, UnknownDtype) {
  SafetensorsTestWriter w = ValidWriter();
  w.AddTensor("extra.weight", "Q7", {4}, std::vector<uint8_t>(4, 0));
  ExpectConvertFails(ModelWith(w.Build()), 1, "extra.weight");
}

TEST_F(BadInputTest, MissingShard) {
  const std::string model = dir_ + "/bad";
  ::mkdir(model.c_str(), 0755);
  ASSERT_TRUE(WriteTinyHfModel(model, SmallLlama(), format::DTYPE_F16, 2).ok());
  const std::string shard = "model-00002-of-00002.safetensors";
  ASSERT_EQ(::unlink((model + "/" + shard).c_str()), 0);
  ExpectConvertFails(model, 3, shard);
}

TEST_F(BadInputTest, MissingLayerTensor) {
  ExpectConvertFails(ModelWith(ValidWriter("model.layers.1.mlp.up_proj.weight").Build()), 1,
                     "up");
}

// Issue 11, item 7: a layer count of 2^20 with the tensors of two layers is
// refused against the tensor table, before anything proportional to it is
// allocated (it cost 1.1 GB and seconds).
TEST_F(BadInputTest, HugeLayerCountInConfigJsonIsRefusedAgainstTheTensors) {
  format::ModelInfo huge = SmallLlama();
  huge.set_num_layers(uint32_t{1} << 20);
  const std::string model = ModelWith(ValidWriter().Build());
  std::ofstream(model + "/config.json", std::ios::trunc) << HfConfigJson(huge);
  ExpectConvertFails(model, 1, "declares 1048576 layers, more than the 21 tensors of its table");
}

TEST_F(BadInputTest, HugeLayerCountInGgufIsRefusedAgainstTheTensors) {
  std::vector<uint8_t> bytes = TinyLlamaGguf(SmallLlama(), format::DTYPE_F16);
  // The key, then its type (uint32 = 4) and value, little-endian.
  const std::string key = "llama.block_count";
  const auto at = std::search(bytes.begin(), bytes.end(), key.begin(), key.end());
  ASSERT_NE(at, bytes.end());
  const size_t value = static_cast<size_t>(at - bytes.begin()) + key.size() + 4;
  ASSERT_EQ(bytes[value - 4], 4);
  ASSERT_EQ(bytes[value], 2);
  bytes[value] = 0;
  bytes[value + 2] = 0x10;  // 2^20
  const std::string gguf = dir_ + "/huge.gguf";
  ASSERT_TRUE(WriteFileBytes(gguf, bytes).ok());
  ExpectConvertFails(gguf, 1, "declares 1048576 layers, more than the");
}

TEST_F(BadInputTest, WrongShape) {
  ExpectConvertFails(ModelWith(ValidWriter("", "model.layers.0.self_attn.k_proj.weight").Build()),
                     1, "model.layers.0.self_attn.k_proj.weight");
}

// Shape errors used to name no file at all.
TEST_F(BadInputTest, WrongShapeNamesTheSourceFile) {
  const std::string model =
      ModelWith(ValidWriter("", "model.layers.0.self_attn.k_proj.weight").Build());
  ExpectConvertFails(model, 1,
                     "zcpack convert: " + model + "/model.safetensors: tensors do not match the "
                     "llama model: tensor 'model.layers.0.self_attn.k_proj.weight' (attn_k, "
                     "layer 0) has shape [32, 96], expected [32, 64]\n");
}

// A tensor with no elements used to be reported against the output file.
TEST_F(BadInputTest, ZeroElementTensorNamesTheInputFileAndTensor) {
  SafetensorsTestWriter w = ValidWriter();
  w.AddFloatTensor("extra.empty", format::DTYPE_F16, {4, 0}, {});
  const std::string model = ModelWith(w.Build());
  ExpectConvertFails(model, 1,
                     "zcpack convert: " + model + "/model.safetensors: tensor 'extra.empty': "
                     "shape [4, 0] has a zero dimension; a container cannot store it\n");
}

TEST_F(BadInputTest, NonFiniteValueNamesTheTensorUnlessAllowed) {
  SafetensorsTestWriter w;
  const auto expected = converter::ExpectedTensors(SmallLlama());
  for (const auto& e : *expected) {
    const std::string name = converter::TensorName(e.role, e.layer, converter::TensorNaming::kHuggingFace);
    uint64_t n = 1;
    for (uint64_t d : e.shape) n *= d;
    std::vector<float> values = PseudoRandomFloats(n, n);
    if (name == "model.layers.1.self_attn.v_proj.weight") values[70] = std::numeric_limits<float>::quiet_NaN();
    w.AddFloatTensor(name, format::DTYPE_F32, e.shape, values);
  }
  const std::string model = ModelWith(w.Build());
  ExpectConvertFails(model, 1, "model.layers.1.self_attn.v_proj.weight': element 70");
  const CliResult allowed =
      RunZcpack({"convert", model, "-o", dir_ + "/nan.zcpack", "--allow-nonfinite"});
  EXPECT_EQ(allowed.exit_code, 0) << allowed.err;
  // Kept as f32, the NaN survives: the container is intact (checksums match)
  // but cannot run, which only verify --run notices.
  const std::string f32 = dir_ + "/nan.f32.zcpack";
  ASSERT_EQ(RunZcpack({"convert", model, "-o", f32, "--allow-nonfinite", "--quant", "f32"}).exit_code, 0);
  EXPECT_EQ(RunZcpack({"verify", f32}).exit_code, 0);
  const CliResult run = RunZcpack({"verify", f32, "--run"});
  EXPECT_EQ(run.exit_code, 1) << run.out;
  EXPECT_THAT(run.out + run.err, HasSubstr("smoke_run"));
  EXPECT_THAT(run.out + run.err, HasSubstr("non-finite logit"));
  EXPECT_EQ(RunZcpack({"verify", dir_ + "/nan.zcpack", "--run"}).exit_code, 0);
}

TEST_F(BadInputTest, OutputFolderMissingOrNotAFolder) {
  const std::string model = Synth("tiny");
  const CliResult missing = RunZcpack({"convert", model, "-o", dir_ + "/no/such/dir/out.zcpack"});
  EXPECT_EQ(missing.exit_code, 3);
  EXPECT_THAT(missing.err, HasSubstr("no/such/dir/out.zcpack"));
  const CliResult not_dir =
      RunZcpack({"convert", model, "-o", model + "/config.json/out.zcpack"});
  EXPECT_EQ(not_dir.exit_code, 3);
  EXPECT_THAT(not_dir.err, HasSubstr("config.json/out.zcpack"));
}

void BecomeNobody() {
  if (::getuid() == 0) {
    ::setgroups(0, nullptr);
    ::setgid(65534);
    ::setuid(65534);
  }
}

// Whether a process that BecomeNobody() dropped may access `path` with
// `mode` (access(2) flags), asked in a child so this process keeps its ids.
bool NobodyMayAccess(const std::string& path, int mode) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    BecomeNobody();
    ::_exit(::access(path.c_str(), mode) == 0 ? 0 : 1);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

TEST_F(BadInputTest, UnwritableOutputFolder) {
  const std::string model = Synth("tiny");
  const std::string locked = dir_ + "/locked";
  ASSERT_EQ(::mkdir(locked.c_str(), 0555), 0);
  // The test may run as root, which ignores permissions: the child drops to
  // nobody (who may read the model but not write into the folder).
  ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(model.c_str(), 0755), 0);
  // Under a folder nobody cannot enter (a checkout or TMPDIR under /root) the
  // child cannot even start the program (exit 127) or read the model: that
  // says nothing about convert, so skip rather than fail.
  if (::getuid() == 0) {
    if (RunZcpack({"--help"}, BecomeNobody).exit_code == 127) {
      GTEST_SKIP() << "the unprivileged user 'nobody' cannot run the zcpack binary of this "
                      "build tree (it lies under a folder nobody may not enter)";
    }
    if (!NobodyMayAccess(model + "/model.safetensors", R_OK)) {
      GTEST_SKIP() << "the unprivileged user 'nobody' cannot read " << model
                   << " (TMPDIR lies under a folder nobody may not enter)";
    }
  }
  const CliResult r = RunZcpack({"convert", model, "-o", locked + "/out.zcpack"}, BecomeNobody);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_THAT(r.err, HasSubstr("locked/out.zcpack"));
  EXPECT_THAT(r.err, HasSubstr("Permission denied"));
  EXPECT_THAT(TempFiles(locked), ::testing::IsEmpty());
}

void LimitFileSizeTo64KiB() {
  rlimit limit{64 << 10, 64 << 10};
  ::setrlimit(RLIMIT_FSIZE, &limit);
}

TEST_F(BadInputTest, DiskFullLeavesNothingBehind) {
  const std::string model = Synth("tiny");
  ExpectConvertFails(model, 3, "out.zcpack", LimitFileSizeTo64KiB);
}

TEST_F(BadInputTest, NotAModel) {
  const std::string path = dir_ + "/notes.txt";
  std::ofstream(path) << "not a model\n";
  ExpectConvertFails(path, 1, "notes.txt");
}

// A GGUF tensor name that is not UTF-8 used to give exit 0 and a container
// that nothing could read (protobuf strings must be UTF-8).
TEST_F(BadInputTest, GgufTensorNameThatIsNotUtf8IsRefused) {
  std::vector<uint8_t> bytes = TinyLlamaGguf(SmallLlama(), format::DTYPE_F16);
  const std::string name = "output_norm.weight";
  auto at = std::search(bytes.begin(), bytes.end(), name.begin(), name.end());
  ASSERT_NE(at, bytes.end());
  at[6] = 0xff;  // output\xffnorm.weight, the same length
  const std::string gguf = dir_ + "/bad\xfe.gguf";
  ASSERT_TRUE(WriteFileBytes(gguf, bytes).ok());
  ExpectConvertFails(gguf, 1, "zcpack convert: " + dir_ + "/bad\\xfe.gguf: tensor "
                              "'output\\xffnorm.weight': name is not valid UTF-8\n");
}

// A source file name that is not UTF-8 is recorded escaped, so the container
// reads back.
TEST_F(ConvertTest, SourceFileNameThatIsNotUtf8IsRecordedEscaped) {
  const std::string gguf = dir_ + "/tiny\xff.gguf";
  ASSERT_TRUE(WriteFileBytes(gguf, TinyLlamaGguf(SmallLlama(), format::DTYPE_F16)).ok());
  const std::string out = dir_ + "/out.zcpack";
  const CliResult r = RunZcpack({"convert", gguf, "-o", out, "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = Inspect(out);
  EXPECT_EQ(j["provenance"]["sources"][0]["name"], "tiny\\xff.gguf") << j["provenance"];
  EXPECT_EQ(j["tokenizers"][0]["file_name"], "tiny\\xff.gguf");
}

// A 19.6 MB GGUF tokenizer array cost 748 MB (38 times its size): it became a
// vector of std::string and then a JSON document. It is now read in place
// from the mapping and streamed into the compressor, so converting it costs
// the array's own pages of the mapping (1x, file-backed), zstd's context at
// the tokenizer level (bounded by the level's window and tables, not by the
// array) and the compressed blob. Measured as the growth of the convert
// process's peak RSS (ru_maxrss, from wait4) over the same model without the
// array; about 2.4x for 20 MB here. The allocation-level pin (nothing the
// size of the array is allocated) is GgufTokenizerBlobTest in
// tests/converter/gguf_test.cc.
TEST_F(ConvertTest, LargeGgufTokenizerArrayPeakMemoryIsNotAMultipleOfIt) {
  const std::string small = dir_ + "/small.gguf";
  const std::string big = dir_ + "/big.gguf";
  const std::vector<uint8_t> small_bytes = TinyLlamaGguf(SmallLlama(), format::DTYPE_F16);
  const std::vector<uint8_t> big_bytes =
      TinyLlamaGguf(SmallLlama(), format::DTYPE_F16, 1, MergeLikeStrings(uint64_t{20} << 20));
  ASSERT_TRUE(WriteFileBytes(small, small_bytes).ok());
  ASSERT_TRUE(WriteFileBytes(big, big_bytes).ok());
  const int64_t array_bytes = static_cast<int64_t>(big_bytes.size() - small_bytes.size());
  const CliResult base =
      RunZcpack({"convert", small, "-o", dir_ + "/small.zcpack", "--threads", "1", "--quiet"});
  ASSERT_EQ(base.exit_code, 0) << base.err;
  const CliResult r =
      RunZcpack({"convert", big, "-o", dir_ + "/big.zcpack", "--threads", "1", "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const int64_t growth = (int64_t{r.max_rss_kib} - base.max_rss_kib) * 1024;
  EXPECT_LT(growth, 3 * array_bytes)
      << "peak RSS " << base.max_rss_kib << " KiB without the array, " << r.max_rss_kib
      << " KiB with " << array_bytes << " bytes of it";
  const json j = Inspect(dir_ + "/big.zcpack");
  EXPECT_EQ(j["tokenizers"][0]["kind"], "gguf-metadata");
}

TEST_F(ConvertTest, KeepF16PatternThatIsNotUtf8IsUsageError) {
  const std::string model = Synth("tiny");
  const std::string out = dir_ + "/out.zcpack";
  const CliResult r = RunZcpack({"convert", model, "-o", out, "--keep-f16", "lm_\xff*"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("zcpack convert: --keep-f16 'lm_\\xff*' is not valid UTF-8\n"));
  EXPECT_FALSE(Exists(out));
  EXPECT_THAT(TempFiles(dir_), ::testing::IsEmpty());
}

}  // namespace
}  // namespace zcpack::testing

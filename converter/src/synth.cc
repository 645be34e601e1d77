#include "zcpack/converter/synth.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "xxhash.h"
#include "zcpack/format/coding.h"
#include "zcpack/format/dtype.h"
#include "zcpack/format/half.h"
#include "zcpack/format/posix_file.h"
#include "zcpack/format/temp_file.h"
#include "zcpack/format/threads.h"
#include "zcpack/status_macros.h"

namespace zcpack::converter {
namespace {

using format::ModelInfo;

ModelInfo Llama(uint32_t hidden, uint32_t layers, uint32_t heads, uint32_t kv_heads,
                uint32_t ffn, uint32_t vocab, uint32_t max_pos, double theta, double eps,
                bool tied) {
  ModelInfo m;
  m.set_architecture("llama");
  m.set_hidden_size(hidden);
  m.set_num_layers(layers);
  m.set_num_heads(heads);
  m.set_num_kv_heads(kv_heads);
  m.set_head_dim(hidden / heads);
  m.set_intermediate_size(ffn);
  m.set_vocab_size(vocab);
  m.set_max_position_embeddings(max_pos);
  m.set_rope_theta(theta);
  m.set_rms_norm_eps(eps);
  m.set_tied_embeddings(tied);
  m.set_rope_layout(format::ROPE_LAYOUT_HALF_SPLIT);
  m.set_bos_token_id(1);
  m.set_eos_token_id(2);
  return m;
}

struct SynthTensor {
  std::string name;
  std::vector<uint64_t> shape;
  bool is_norm = false;
  uint64_t elements() const {
    uint64_t n = 1;
    for (uint64_t d : shape) n *= d;
    return n;
  }
};

std::vector<SynthTensor> TensorsFor(const ModelInfo& m) {
  const uint64_t hidden = m.hidden_size(), hd = m.head_dim(), ffn = m.intermediate_size();
  const uint64_t q_rows = uint64_t{m.num_heads()} * hd, kv_rows = uint64_t{m.num_kv_heads()} * hd;
  std::vector<SynthTensor> t;
  t.push_back({"model.embed_tokens.weight", {m.vocab_size(), hidden}});
  for (uint32_t l = 0; l < m.num_layers(); ++l) {
    const std::string p = absl::StrCat("model.layers.", l, ".");
    t.push_back({p + "input_layernorm.weight", {hidden}, true});
    t.push_back({p + "self_attn.q_proj.weight", {q_rows, hidden}});
    t.push_back({p + "self_attn.k_proj.weight", {kv_rows, hidden}});
    t.push_back({p + "self_attn.v_proj.weight", {kv_rows, hidden}});
    t.push_back({p + "self_attn.o_proj.weight", {hidden, q_rows}});
    t.push_back({p + "post_attention_layernorm.weight", {hidden}, true});
    t.push_back({p + "mlp.gate_proj.weight", {ffn, hidden}});
    t.push_back({p + "mlp.up_proj.weight", {ffn, hidden}});
    t.push_back({p + "mlp.down_proj.weight", {hidden, ffn}});
  }
  t.push_back({"model.norm.weight", {hidden}, true});
  if (!m.tied_embeddings()) t.push_back({"lm_head.weight", {m.vocab_size(), hidden}});
  return t;
}

inline uint64_t Mix(uint64_t x) {  // splitmix64 finaliser
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Approximately standard normal (Irwin-Hall of four uniforms), from one hash.
inline float NearNormal(uint64_t h) {
  const float sum = static_cast<float>((h & 0xffff) + ((h >> 16) & 0xffff) + ((h >> 32) & 0xffff) +
                                       (h >> 48)) *
                    (1.0f / 65536.0f);
  return (sum - 2.0f) * 1.7320508f;
}

// Fills out[i] for elements [begin, begin + n) of tensor `index`.
void Generate(const SynthTensor& t, uint64_t tensor_key, uint64_t begin, size_t n, float* out) {
  if (t.is_norm) {
    for (size_t i = 0; i < n; ++i) out[i] = 1.0f + 0.1f * NearNormal(Mix(tensor_key ^ (begin + i)));
    return;
  }
  const uint64_t cols = t.shape.back();
  const float sigma = 1.0f / std::sqrt(static_cast<float>(cols));
  for (size_t i = 0; i < n; ++i) {
    const uint64_t e = begin + i;
    const uint64_t col = e % cols;
    // About one input channel in 64 carries outliers, as real checkpoints do.
    const float scale = (Mix(tensor_key ^ 0x5bd1e995ull ^ (col * 0x2545f4914f6cdd1dull)) & 63) == 0
                            ? 6.0f * sigma
                            : sigma;
    out[i] = scale * NearNormal(Mix(tensor_key ^ e));
  }
}

void Encode(const float* src, size_t n, format::DType dtype, uint8_t* dst) {
  for (size_t i = 0; i < n; ++i) {
    switch (dtype) {
      case format::DTYPE_F32:
        format::EncodeFixed32(dst + 4 * i, std::bit_cast<uint32_t>(src[i]));
        break;
      case format::DTYPE_BF16:
        format::EncodeFixed16(dst + 2 * i, format::FloatToBFloat16(src[i]));
        break;
      default:
        format::EncodeFixed16(dst + 2 * i, format::FloatToHalf(src[i]));
        break;
    }
  }
}

std::string SafetensorsDtype(format::DType d) {
  switch (d) {
    case format::DTYPE_F32: return "F32";
    case format::DTYPE_BF16: return "BF16";
    default: return "F16";
  }
}

// Adds a note to `notes` for each stale temporary file that creating `temp`
// removed.
void NoteRemovedStale(const format::TempFile& temp, std::vector<std::string>* notes) {
  for (const std::string& path : temp.removed_stale()) {
    notes->push_back(format::StaleTempFileNote(path));
  }
}

// Writes `contents` to path atomically (format::TempFile).
absl::Status WriteSmallFile(const std::string& path, const std::string& contents,
                            bool overwrite, std::vector<std::string>* notes) {
  ZCPACK_ASSIGN_OR_RETURN(format::TempFile temp, format::TempFile::Create(path));
  NoteRemovedStale(temp, notes);
  ZCPACK_RETURN_IF_ERROR(format::WriteAt(
      temp.fd(), 0,
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(contents.data()), contents.size()),
      temp.path()));
  return temp.Install(overwrite);
}

nlohmann::json ConfigJson(const ModelInfo& m, format::DType dtype) {
  return {{"architectures", {"LlamaForCausalLM"}},
          {"model_type", "llama"},
          {"hidden_size", m.hidden_size()},
          {"intermediate_size", m.intermediate_size()},
          {"num_attention_heads", m.num_heads()},
          {"num_hidden_layers", m.num_layers()},
          {"num_key_value_heads", m.num_kv_heads()},
          {"head_dim", m.head_dim()},
          {"vocab_size", m.vocab_size()},
          {"max_position_embeddings", m.max_position_embeddings()},
          {"rms_norm_eps", m.rms_norm_eps()},
          {"rope_theta", m.rope_theta()},
          {"tie_word_embeddings", m.tied_embeddings()},
          {"bos_token_id", m.bos_token_id()},
          {"eos_token_id", m.eos_token_id()},
          {"hidden_act", "silu"},
          {"torch_dtype", dtype == format::DTYPE_F32    ? "float32"
                          : dtype == format::DTYPE_BF16 ? "bfloat16"
                                                        : "float16"}};
}

// Calls SynthOptions::progress at most every 100 ms, and always for the last
// bytes.
class ProgressReporter {
 public:
  ProgressReporter(const SynthOptions& options, uint64_t bytes_total, uint64_t files_total)
      : callback_(options.progress), start_(std::chrono::steady_clock::now()) {
    state_.bytes_total = bytes_total;
    state_.files_total = files_total;
  }
  void Wrote(uint64_t bytes) {
    state_.bytes_done += bytes;
    Report(state_.bytes_done == state_.bytes_total);
  }
  void FinishedFile() {
    ++state_.files_done;
    Report(state_.files_done == state_.files_total);
  }

 private:
  void Report(bool final_call) {
    if (!callback_) return;
    state_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    if (!final_call && state_.seconds - last_seconds_ < 0.1) return;
    last_seconds_ = state_.seconds;
    callback_(state_);
  }
  const std::function<void(const SynthProgress&)>& callback_;
  const std::chrono::steady_clock::time_point start_;
  SynthProgress state_;
  double last_seconds_ = -1;
};

struct Shard {
  std::string file_name;
  std::vector<size_t> tensors;  // indices into the tensor list
  uint64_t bytes = 0;
};

absl::Status WriteShard(const std::string& dir, const Shard& shard,
                        const std::vector<SynthTensor>& tensors, const SynthOptions& options,
                        uint64_t elem_bytes, int threads, std::vector<std::string>* notes,
                        ProgressReporter& progress) {
  nlohmann::ordered_json header;
  header["__metadata__"] = {{"format", "pt"}, {"generator", "zcpack synth"}};
  uint64_t cursor = 0;
  std::vector<uint64_t> offsets;
  for (size_t i : shard.tensors) {
    const uint64_t n = tensors[i].elements() * elem_bytes;
    header[tensors[i].name] = {{"dtype", SafetensorsDtype(options.dtype)},
                               {"shape", tensors[i].shape},
                               {"data_offsets", {cursor, cursor + n}}};
    offsets.push_back(cursor);
    cursor += n;
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');
  const std::string path = absl::StrCat(dir, "/", shard.file_name);
  // A temporary file of this process's own: concurrent runs into one folder
  // never write into each other's file. It is removed on any failure.
  ZCPACK_ASSIGN_OR_RETURN(format::TempFile temp_file, format::TempFile::Create(path));
  NoteRemovedStale(temp_file, notes);
  const int fd = temp_file.fd();
  const std::string& temp = temp_file.path();
  uint8_t len[8];
  format::EncodeFixed64(len, json.size());
  if (auto s = format::WriteAt(fd, 0, len, temp); !s.ok()) return s;
  if (auto s = format::WriteAt(fd, 8, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(json.data()), json.size()), temp); !s.ok()) {
    return s;
  }
  const uint64_t data_start = 8 + json.size();
  constexpr size_t kChunk = size_t{1} << 20;  // elements per thread per step
  std::vector<float> floats(kChunk * threads);
  std::vector<uint8_t> bytes(kChunk * threads * elem_bytes);
  for (size_t k = 0; k < shard.tensors.size(); ++k) {
    const SynthTensor& t = tensors[shard.tensors[k]];
    const uint64_t key = Mix(options.seed * 0x9e3779b97f4a7c15ull + XXH3_64bits(t.name.data(), t.name.size()));
    const uint64_t total = t.elements();
    for (uint64_t begin = 0; begin < total; begin += kChunk * threads) {
      const uint64_t step = std::min<uint64_t>(kChunk * threads, total - begin);
      auto work = [&](int w) {
        const uint64_t lo = begin + uint64_t(w) * kChunk;
        if (lo >= begin + step) return;
        const size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, begin + step - lo));
        float* f = floats.data() + size_t(w) * kChunk;
        Generate(t, key, lo, n, f);
        Encode(f, n, options.dtype, bytes.data() + size_t(w) * kChunk * elem_bytes);
      };
      std::vector<std::thread> pool;
      for (int w = 1; w < threads; ++w) pool.emplace_back(work, w);
      work(0);
      for (auto& th : pool) th.join();
      const uint64_t off = data_start + offsets[k] + begin * elem_bytes;
      if (auto s = format::WriteAt(fd, off, std::span<const uint8_t>(bytes.data(), step * elem_bytes), temp); !s.ok()) {
        return s;
      }
      progress.Wrote(step * elem_bytes);
    }
  }
  ZCPACK_RETURN_IF_ERROR(temp_file.Install(options.overwrite));
  progress.FinishedFile();
  return absl::OkStatus();
}

}  // namespace

const std::vector<SynthShape>& SynthShapes() {
  static const std::vector<SynthShape> shapes = {
      {"tiny", Llama(256, 2, 4, 2, 512, 512, 256, 10000.0, 1e-5, false)},
      {"stories15m", Llama(288, 6, 6, 6, 768, 32000, 256, 10000.0, 1e-5, false)},
      {"stories110m", Llama(768, 12, 12, 12, 2048, 32000, 1024, 10000.0, 1e-5, false)},
      {"llama-1b", Llama(2048, 16, 32, 8, 8192, 128256, 131072, 500000.0, 1e-5, true)},
      {"llama-7b", Llama(4096, 32, 32, 32, 11008, 32000, 4096, 10000.0, 1e-5, false)},
  };
  return shapes;
}

absl::StatusOr<SynthShape> FindSynthShape(absl::string_view name) {
  std::vector<std::string> names;
  for (const SynthShape& s : SynthShapes()) {
    if (absl::AsciiStrToLower(name) == s.name) return s;
    names.push_back(s.name);
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown shape '", name, "' (known: ",
                                                 absl::StrJoin(names, ", "), ")"));
}

absl::Status CheckSynthOptions(const SynthOptions& options) {
  ZCPACK_RETURN_IF_ERROR(FindSynthShape(options.shape).status());
  if (options.dtype != format::DTYPE_F16 && options.dtype != format::DTYPE_BF16 &&
      options.dtype != format::DTYPE_F32) {
    return absl::InvalidArgumentError(absl::StrCat("synth writes f16, bf16 or f32, not ",
                                                   format::DTypeName(options.dtype)));
  }
  if (options.out_dir.empty()) return absl::InvalidArgumentError("no output folder given");
  return absl::OkStatus();
}

absl::StatusOr<SynthResult> Synthesize(const SynthOptions& options) {
  ZCPACK_RETURN_IF_ERROR(CheckSynthOptions(options));
  ZCPACK_ASSIGN_OR_RETURN(const SynthShape shape, FindSynthShape(options.shape));
  {
    std::error_code ec;
    std::filesystem::create_directories(options.out_dir, ec);
    if (ec) {
      return format::ErrnoError(ec.value(), options.out_dir, "cannot create folder");
    }
  }
  const uint64_t elem_bytes = format::BlockBytes(options.dtype);
  const std::vector<SynthTensor> tensors = TensorsFor(shape.model);
  SynthResult result;
  uint64_t total = 0;
  for (const auto& t : tensors) {
    total += t.elements() * elem_bytes;
    result.parameters += t.elements();
  }
  result.weight_bytes = total;

  std::vector<Shard> shards;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const uint64_t n = tensors[i].elements() * elem_bytes;
    if (shards.empty() || (shards.back().bytes + n > options.max_shard_bytes && !shards.back().tensors.empty())) {
      shards.push_back({});
    }
    shards.back().tensors.push_back(i);
    shards.back().bytes += n;
  }
  if (shards.size() == 1) {
    shards[0].file_name = "model.safetensors";
  } else {
    for (size_t s = 0; s < shards.size(); ++s) {
      char name[64];
      std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", s + 1, shards.size());
      shards[s].file_name = name;
    }
  }
  std::vector<std::string> targets = {"config.json"};
  for (const Shard& s : shards) targets.push_back(s.file_name);
  if (shards.size() > 1) targets.push_back("model.safetensors.index.json");
  for (const std::string& f : targets) {
    const std::string p = absl::StrCat(options.out_dir, "/", f);
    struct stat st;
    if (!options.overwrite && ::stat(p.c_str(), &st) == 0) {
      return absl::AlreadyExistsError(absl::StrCat(p, ": already exists (pass --force to overwrite)"));
    }
  }
  const int threads = format::ThreadsFor(options.threads);
  ProgressReporter progress(options, total, shards.size());
  for (const Shard& s : shards) {
    ZCPACK_RETURN_IF_ERROR(WriteShard(options.out_dir, s, tensors, options, elem_bytes, threads,
                                      &result.notes, progress));
  }
  if (shards.size() > 1) {
    nlohmann::ordered_json index;
    index["metadata"] = {{"total_size", total}};
    nlohmann::ordered_json map = nlohmann::ordered_json::object();
    for (const Shard& s : shards) {
      for (size_t i : s.tensors) map[tensors[i].name] = s.file_name;
    }
    index["weight_map"] = std::move(map);
    ZCPACK_RETURN_IF_ERROR(WriteSmallFile(
        absl::StrCat(options.out_dir, "/model.safetensors.index.json"), index.dump(2) + "\n",
        options.overwrite, &result.notes));
  }
  ZCPACK_RETURN_IF_ERROR(WriteSmallFile(absl::StrCat(options.out_dir, "/config.json"),
                                        ConfigJson(shape.model, options.dtype).dump(2) + "\n",
                                        options.overwrite, &result.notes));
  for (const std::string& f : targets) result.files.push_back(absl::StrCat(options.out_dir, "/", f));
  return result;
}

}  // namespace zcpack::converter

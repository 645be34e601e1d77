#include "zcpack/exporter/export.h"

#include <sys/stat.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gguf_tokenizer.h"
#include "xxhash.h"
// Debian's libxxhash on x86-64 also carries XXH3 kernels for AVX2 and AVX-512,
// chosen at run time: the same digests at about twice the SSE2 speed. The
// header maps XXH3_64bits() and XXH3_64bits_update() to them.
#if defined(__x86_64__) && __has_include("xxh_x86dispatch.h")
#include "xxh_x86dispatch.h"
#endif
#include "zcpack/converter/architecture.h"
#include "zcpack/converter/gguf.h"
#include "zcpack/exporter/gguf_writer.h"
#include "zcpack/format/container_reader.h"
#include "zcpack/format/dtype.h"
#include "zcpack/format/coding.h"
#include "zcpack/format/q4_blocks.h"
#include "zcpack/format/model_layout.h"
#include "zcpack/format/row_groups.h"
#include "zcpack/format/temp_file.h"
#include "zcpack/format/utf8.h"
#include "zcpack/runtime/tokenizer.h"
#include "zcpack/status_macros.h"

namespace zcpack::exporter {
namespace {

using Clock = std::chrono::steady_clock;
using format::TensorEntry;

// About this many bytes per write.
constexpr uint64_t kChunkBytes = uint64_t{4} << 20;

// The ggml type whose blocks are a container dtype's (SPEC.md, "Data
// types": byte-identical); nullopt for a dtype GGUF cannot hold.
std::optional<uint32_t> GgmlTypeOf(format::DType dtype) {
  switch (dtype) {
    case format::DTYPE_F32: return converter::kGgmlTypeF32;
    case format::DTYPE_F16: return converter::kGgmlTypeF16;
    case format::DTYPE_BF16: return converter::kGgmlTypeBF16;
    case format::DTYPE_Q4_0: return converter::kGgmlTypeQ4_0;
    case format::DTYPE_Q4_1: return converter::kGgmlTypeQ4_1;
    case format::DTYPE_Q5_0: return converter::kGgmlTypeQ5_0;
    case format::DTYPE_Q5_1: return converter::kGgmlTypeQ5_1;
    case format::DTYPE_Q8_0: return converter::kGgmlTypeQ8_0;
    case format::DTYPE_Q4_K: return converter::kGgmlTypeQ4_K;
    case format::DTYPE_Q5_K: return converter::kGgmlTypeQ5_K;
    case format::DTYPE_Q6_K: return converter::kGgmlTypeQ6_K;
    default: return std::nullopt;
  }
}

// How one container tensor becomes a GGUF tensor.
struct TensorJob {
  size_t index = 0;  // in the container
  GgufTensorSpec spec;
  uint64_t rows = 1;       // all dimensions but the last
  uint64_t row_bytes = 0;  // stored bytes per row
  // Q/K rows in heads of `head_rows`, half-split -> interleaved.
  bool permute = false;
  uint64_t head_rows = 0;
  // A 1-D f16/bf16 tensor written as f32.
  bool widen = false;
};

// Row r of an interleaved Q/K matrix (or element r of its bias) takes the
// bytes of half-split row HalfSplitRow(r).
using format::IsQueryOrKey;

absl::Status CheckOutputIsNotContainer(const std::string& output, const std::string& container) {
  struct stat out_st, in_st;
  if (::stat(output.c_str(), &out_st) != 0 || ::stat(container.c_str(), &in_st) != 0) {
    return absl::OkStatus();
  }
  if (out_st.st_dev == in_st.st_dev && out_st.st_ino == in_st.st_ino) {
    return absl::AlreadyExistsError(absl::StrCat(format::EscapeInvalidUtf8(output),
                                                 ": is the input file; refusing to write over it"));
  }
  return absl::OkStatus();
}

// llama.cpp's llama.* keys for the container's hyperparameters.
void AddModelKeys(const format::ModelInfo& model, bool quantized, GgufMetadata* metadata) {
  metadata->AddString("general.architecture", "llama");
  metadata->AddUint32("general.alignment", 0);  // set by the writer
  if (quantized) metadata->AddUint32("general.quantization_version", 2);  // ggml's QK format
  metadata->AddUint32("llama.vocab_size", model.vocab_size());
  metadata->AddUint32("llama.context_length", model.max_position_embeddings());
  metadata->AddUint32("llama.embedding_length", model.hidden_size());
  metadata->AddUint32("llama.block_count", model.num_layers());
  metadata->AddUint32("llama.feed_forward_length", model.intermediate_size());
  metadata->AddUint32("llama.attention.head_count", model.num_heads());
  metadata->AddUint32("llama.attention.head_count_kv", model.num_kv_heads());
  metadata->AddUint32("llama.rope.dimension_count", model.head_dim());
  if (model.head_dim() * model.num_heads() != model.hidden_size()) {
    metadata->AddUint32("llama.attention.key_length", model.head_dim());
    metadata->AddUint32("llama.attention.value_length", model.head_dim());
  }
  metadata->AddFloat32("llama.rope.freq_base", static_cast<float>(model.rope_theta()));
  metadata->AddFloat32("llama.attention.layer_norm_rms_epsilon",
                       static_cast<float>(model.rms_norm_eps()));
}

// The tokenizer.* keys; returns the kind exported.
absl::StatusOr<std::string> AddTokenizer(const format::Container& c, GgufMetadata* metadata) {
  const format::ModelInfo& model = c.manifest().model();
  if (c.manifest().tokenizers().empty()) {
    // llama.cpp requires tokenizer.ggml.model; "none" loads without a
    // vocabulary (token ids in and out). The ids keep the model info's.
    metadata->AddString("tokenizer.ggml.model", "none");
    if (model.bos_token_id() >= 0) {
      metadata->AddUint32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(model.bos_token_id()));
    }
    if (model.eos_token_id() >= 0) {
      metadata->AddUint32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(model.eos_token_id()));
    }
    return std::string("none");
  }
  absl::StatusOr<size_t> index = runtime::TokenizerBlobIndex(c);
  if (!index.ok()) return absl::UnimplementedError(index.status().message());
  const format::TokenizerBlob& blob = c.manifest().tokenizers(static_cast<int>(*index));
  if (blob.kind() == "gguf-metadata") {
    ZCPACK_ASSIGN_OR_RETURN(const std::string raw, c.TokenizerData(*index));
    ZCPACK_RETURN_IF_ERROR(internal::AddTokenizerKeysFromGgufJson(
        raw,
        absl::StrCat(c.path(), ": tokenizer ", blob.kind(), " ('",
                     format::EscapeInvalidUtf8(blob.file_name()), "')"),
        metadata));
  } else {
    ZCPACK_ASSIGN_OR_RETURN(const runtime::Vocabulary vocab,
                            runtime::VocabularyFromContainer(c, *index));
    internal::AddTokenizerKeysFromVocabulary(vocab, metadata);
  }
  return blob.kind();
}

// Writes one tensor's bytes as GGUF holds them; updates `data_hash` with them.
class TensorWriter {
 public:
  TensorWriter(const format::Container& c, GgufFileWriter& writer, XXH3_state_t* data_hash)
      : c_(c), writer_(writer), data_hash_(data_hash) {}

  absl::Status Write(size_t out_index, const TensorJob& job) {
    const TensorEntry& t = c_.tensor(job.index);
    const std::span<const uint8_t> data = c_.TensorData(job.index);
    // The container's bytes are what its manifest says, or nothing is written.
    const uint64_t stored_hash = XXH3_64bits(data.data(), data.size());
    if (stored_hash != t.xxh3()) {
      return absl::DataLossError(absl::StrCat(
          c_.path(), ": tensor '", t.name(), "': checksum mismatch (XXH3-64 ",
          absl::Hex(stored_hash, absl::kZeroPad16), ", the manifest records ",
          absl::Hex(t.xxh3(), absl::kZeroPad16), "; at offset ", t.offset(), ")"));
    }
    if (job.widen || (job.permute && t.shape_size() == 1)) return WriteVector(out_index, job, data);
    if (job.permute) return WritePermutedRows(out_index, job, data);
    if (t.layout() == format::LAYOUT_ROW_GROUPS_16) return WriteUngrouped(out_index, job, data);
    for (uint64_t begin = 0; begin < data.size(); begin += kChunkBytes) {
      ZCPACK_RETURN_IF_ERROR(Emit(out_index, data.subspan(begin, std::min<uint64_t>(
                                                                   kChunkBytes, data.size() - begin))));
    }
    return absl::OkStatus();
  }

 private:
  absl::Status Emit(size_t out_index, std::span<const uint8_t> bytes) {
    XXH3_64bits_update(data_hash_, bytes.data(), bytes.size());
    return writer_.Append(out_index, bytes);
  }

  // Row groups back to ggml's order, whole groups at a time (the last chunk
  // takes the row-major tail too).
  absl::Status WriteUngrouped(size_t out_index, const TensorJob& job,
                              std::span<const uint8_t> data) {
    const TensorEntry& t = c_.tensor(job.index);
    const uint64_t group_bytes = format::kRowGroupRows * job.row_bytes;
    const uint64_t groups_per_chunk = std::max<uint64_t>(1, kChunkBytes / group_bytes);
    const uint64_t rows_per_chunk = groups_per_chunk * format::kRowGroupRows;
    uint64_t row = 0;
    while (row < job.rows) {
      uint64_t end = std::min(job.rows, row + rows_per_chunk);
      // A chunk that would leave only the row-major tail takes it.
      if (job.rows - end < format::kRowGroupRows) end = job.rows;
      buffer_.resize((end - row) * job.row_bytes);
      format::FromRowGroups(t.dtype(), end - row, job.row_bytes, data.data() + row * job.row_bytes,
                            buffer_.data());
      ZCPACK_RETURN_IF_ERROR(Emit(out_index, buffer_));
      row = end;
    }
    return absl::OkStatus();
  }

  // Q/K matrices: each output row copied from its half-split row, in ggml's
  // order whatever the stored layout.
  absl::Status WritePermutedRows(size_t out_index, const TensorJob& job,
                                 std::span<const uint8_t> data) {
    const TensorEntry& t = c_.tensor(job.index);
    const uint64_t rows_per_chunk = std::max<uint64_t>(1, kChunkBytes / job.row_bytes);
    for (uint64_t row = 0; row < job.rows; row += rows_per_chunk) {
      const uint64_t end = std::min(job.rows, row + rows_per_chunk);
      buffer_.resize((end - row) * job.row_bytes);
      for (uint64_t r = row; r < end; ++r) {
        format::CopyRowMajorRow(t.dtype(), t.layout(), job.rows, job.row_bytes, data.data(),
                                format::HalfSplitRow(r, job.head_rows),
                                buffer_.data() + (r - row) * job.row_bytes);
      }
      ZCPACK_RETURN_IF_ERROR(Emit(out_index, buffer_));
    }
    return absl::OkStatus();
  }

  // 1-D tensors (a hidden size of elements): permuted when a Q/K bias,
  // widened to f32 when f16/bf16.
  absl::Status WriteVector(size_t out_index, const TensorJob& job, std::span<const uint8_t> data) {
    const TensorEntry& t = c_.tensor(job.index);
    const uint64_t n = t.shape(t.shape_size() - 1) * job.rows;
    const uint64_t width = format::BlockBytes(t.dtype());
    std::vector<uint8_t> ordered(data.size());
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t from = job.permute ? format::HalfSplitRow(i, job.head_rows) : i;
      std::memcpy(ordered.data() + i * width, data.data() + from * width, width);
    }
    if (!job.widen) return Emit(out_index, ordered);
    std::vector<float> values(n);
    ZCPACK_RETURN_IF_ERROR(format::ConvertToFloat(t.dtype(), ordered.data(), n, values.data()));
    buffer_.resize(n * 4);
    for (uint64_t i = 0; i < n; ++i) {
      format::EncodeFixed32(buffer_.data() + 4 * i, std::bit_cast<uint32_t>(values[i]));
    }
    return Emit(out_index, buffer_);
  }

  const format::Container& c_;
  GgufFileWriter& writer_;
  XXH3_state_t* data_hash_;
  std::vector<uint8_t> buffer_;
};

}  // namespace

absl::Status CheckExportOptions(const ExportOptions& options) {
  if (options.output.empty()) return absl::InvalidArgumentError("-o OUT is required");
  if (options.alignment != 0) {
    if (absl::Status s = CheckGgufAlignment(options.alignment); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--alignment: ", s.message()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ExportReport> ExportToGguf(const ExportOptions& options) {
  const auto start = Clock::now();
  ZCPACK_RETURN_IF_ERROR(CheckExportOptions(options));
  ZCPACK_ASSIGN_OR_RETURN(std::unique_ptr<format::Container> container,
                          format::Container::Open(options.container));
  const format::Container& c = *container;
  const std::string path = format::EscapeInvalidUtf8(c.path());
  const format::ModelInfo& model = c.manifest().model();

  // llama.cpp's llama loader runs llama and mistral (its converter writes
  // Mistral checkpoints as llama); qwen2 has a loader of its own.
  if (model.architecture() != "llama" && model.architecture() != "mistral") {
    return absl::UnimplementedError(absl::StrCat(
        path, ": architecture '", format::EscapeInvalidUtf8(model.architecture()),
        "'; export writes llama-architecture GGUF files (llama, mistral)"));
  }
  if (absl::Status s = format::CheckTensorTable(model, c.manifest().tensors()); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat(path, ": ", s.message()));
  }
  const bool half_split = model.rope_layout() == format::ROPE_LAYOUT_HALF_SPLIT;
  if (!half_split && model.rope_layout() != format::ROPE_LAYOUT_INTERLEAVED) {
    return absl::DataLossError(absl::StrCat(path, ": the model records no RoPE layout"));
  }
  ZCPACK_RETURN_IF_ERROR(CheckOutputIsNotContainer(options.output, options.container));

  // The tensors, in the container's order.
  std::vector<TensorJob> jobs;
  std::vector<std::string> misplaced, unheld;
  bool quantized = false;
  for (size_t i = 0; i < c.num_tensors(); ++i) {
    const TensorEntry& t = c.tensor(i);
    const std::string name = converter::TensorName(t.role(), t.layer(), converter::TensorNaming::kGguf);
    const std::optional<uint32_t> type = GgmlTypeOf(t.dtype());
    if (name.empty()) misplaced.push_back(absl::StrCat("'", t.name(), "'"));
    if (!type.has_value()) {
      unheld.push_back(absl::StrCat("'", t.name(), "' (", format::DTypeName(t.dtype()), ")"));
    }
    if (name.empty() || !type.has_value()) continue;
    TensorJob job;
    job.index = i;
    job.spec.name = name;
    job.spec.ggml_type = *type;
    job.spec.shape.assign(t.shape().begin(), t.shape().end());
    job.spec.nbytes = t.nbytes();
    for (int d = 0; d + 1 < t.shape_size(); ++d) job.rows *= t.shape(d);
    job.row_bytes = t.shape(t.shape_size() - 1) / format::BlockElements(t.dtype()) *
                    format::BlockBytes(t.dtype());
    if (half_split && IsQueryOrKey(t.role())) {
      job.permute = true;
      job.head_rows = model.head_dim();
    }
    if (t.shape_size() == 1 && (t.dtype() == format::DTYPE_F16 || t.dtype() == format::DTYPE_BF16)) {
      job.widen = true;
      job.spec.ggml_type = converter::kGgmlTypeF32;
      job.spec.nbytes = t.nbytes() * 2;
    }
    quantized = quantized || format::IsQuantized(t.dtype());
    jobs.push_back(std::move(job));
  }
  if (!misplaced.empty()) {
    return absl::UnimplementedError(absl::StrCat(
        path, ": ", misplaced.size(), misplaced.size() == 1 ? " tensor has" : " tensors have",
        " no place in llama.cpp's llama architecture, which refuses a file with tensors it does not"
        " use: ",
        absl::StrJoin(misplaced, ", ")));
  }
  if (!unheld.empty()) {
    return absl::UnimplementedError(absl::StrCat(path, ": no ggml type holds ",
                                                 absl::StrJoin(unheld, ", ")));
  }

  // Metadata.
  ExportReport report;
  report.output = options.output;
  report.alignment = options.alignment != 0 ? options.alignment : c.alignment();
  GgufMetadata metadata;
  AddModelKeys(model, quantized, &metadata);
  ZCPACK_ASSIGN_OR_RETURN(report.tokenizer, AddTokenizer(c, &metadata));
  const format::Provenance& provenance = c.manifest().provenance();
  std::vector<std::string> source_names;
  std::vector<uint64_t> source_sizes;
  for (const format::SourceFile& f : provenance.sources()) {
    source_names.push_back(f.name());
    source_sizes.push_back(f.size());
  }
  metadata.AddStringArray(kSourceNamesKey, source_names);
  metadata.AddUint64Array(kSourceSizesKey, source_sizes);
  if (report.tokenizer == "gguf-metadata") {
    ZCPACK_ASSIGN_OR_RETURN(const size_t index, runtime::TokenizerBlobIndex(c));
    metadata.AddString(kSourceTokenizerFileKey, c.manifest().tokenizers(static_cast<int>(index)).file_name());
  }
  metadata.AddUint64(kSourceTensorDataXxh3Key, 0);  // set once the data is written

  // Temporary files of writers that are gone would stay forever: remove
  // them, and say so.
  const std::string output_dir = format::DirName(options.output);
  if (auto removed = format::RemoveStaleTempFiles(output_dir); removed.ok()) {
    for (const std::string& name : *removed) {
      report.notes.push_back(format::EscapeInvalidUtf8(absl::StrCat(
          "removed ", output_dir, "/", name, ", a temporary file left by a writer that is gone")));
    }
  }
  std::vector<GgufTensorSpec> specs;
  specs.reserve(jobs.size());
  for (const TensorJob& job : jobs) specs.push_back(job.spec);
  ZCPACK_ASSIGN_OR_RETURN(std::unique_ptr<GgufFileWriter> writer,
                          GgufFileWriter::Create(options.output, std::move(metadata),
                                                 std::move(specs), report.alignment,
                                                 options.overwrite));
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> data_hash(XXH3_createState(),
                                                                     &XXH3_freeState);
  if (data_hash == nullptr) return absl::ResourceExhaustedError("XXH3_createState failed");
  XXH3_64bits_reset(data_hash.get());
  TensorWriter tensor_writer(c, *writer, data_hash.get());
  for (size_t k = 0; k < jobs.size(); ++k) {
    ZCPACK_RETURN_IF_ERROR(tensor_writer.Write(k, jobs[k]));
    const TensorEntry& t = c.tensor(jobs[k].index);
    ExportedTensor e;
    e.name = jobs[k].spec.name;
    e.source_name = t.name();
    e.ggml_type = std::string(converter::GgmlTypeName(jobs[k].spec.ggml_type));
    e.offset = writer->tensor_offset(k);
    e.nbytes = jobs[k].spec.nbytes;
    e.rope_permuted = jobs[k].permute;
    e.widened = jobs[k].widen;
    report.tensor_bytes += e.nbytes;
    report.tensors.push_back(std::move(e));
  }
  ZCPACK_RETURN_IF_ERROR(writer->SetUint64(kSourceTensorDataXxh3Key, XXH3_64bits_digest(data_hash.get())));
  ZCPACK_RETURN_IF_ERROR(writer->Finish());
  report.output_bytes = writer->file_size();
  report.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return report;
}

}  // namespace zcpack::exporter

#include "zcpack/runtime/model.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <cstdlib>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "loaders.h"
#include "prefetcher.h"
#include "session_buffers.h"
#include "weight_streamer.h"
#include "zcpack/runtime/memory_plan.h"
#include "zcpack/format/mapping_guard.h"
#include "zcpack/format/model_layout.h"
#include "zcpack/format/utf8.h"
#include "zcpack/status_macros.h"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

namespace zcpack::runtime {
namespace {

using format::TensorEntry;

std::string ErrnoText(int e) { return std::strerror(e); }

}  // namespace

absl::StatusOr<size_t> TokenizerBlobIndex(const format::Container& c) {
  // The blob kinds the runtime reads, in the order tokenizer() tries them.
  constexpr absl::string_view kTokenizerKinds[] = {"gguf-metadata", "tokenizer.json",
                                                   "tokenizer.model"};
  const auto& blobs = c.manifest().tokenizers();
  for (absl::string_view kind : kTokenizerKinds) {
    for (int index = 0; index < blobs.size(); ++index) {
      if (blobs[index].kind() == kind) return static_cast<size_t>(index);
    }
  }
  if (blobs.empty()) {
    return absl::NotFoundError(absl::StrCat(
        c.path(), ": carries no tokenizer (its source had no GGUF tokenizer.* metadata, "
                  "tokenizer.json or tokenizer.model); give token ids instead"));
  }
  std::vector<std::string> kinds;
  for (const format::TokenizerBlob& blob : blobs) {
    kinds.push_back(format::EscapeInvalidUtf8(blob.kind()));
  }
  return absl::NotFoundError(absl::StrCat(
      c.path(), ": carries tokenizers of kind ", absl::StrJoin(kinds, ", "),
      ", none of which the runtime reads (gguf-metadata, tokenizer.json, tokenizer.model)"));
}

namespace {

// The name of blob `blob` of `c` in messages.
std::string BlobName(const format::Container& c, const format::TokenizerBlob& blob) {
  return absl::StrCat(c.path(), ": tokenizer ", blob.kind(), " ('",
                      format::EscapeInvalidUtf8(blob.file_name()), "')");
}

}  // namespace

absl::StatusOr<Vocabulary> VocabularyFromContainer(const format::Container& c, size_t index) {
  const format::TokenizerBlob& chosen = c.manifest().tokenizers(static_cast<int>(index));
  const std::string name = BlobName(c, chosen);
  ZCPACK_ASSIGN_OR_RETURN(const std::string raw, c.TokenizerData(index));
  absl::StatusOr<Vocabulary> vocab =
      chosen.kind() == "gguf-metadata"    ? VocabularyFromGgufJson(raw, name)
      : chosen.kind() == "tokenizer.json" ? VocabularyFromHfTokenizerJson(raw, name)
                                          : VocabularyFromSentencePieceModel(raw, name);
  if (!vocab.ok()) return vocab.status();
  // The vocabulary's own ids win; the model info fills what it lacks.
  const format::ModelInfo& info = c.manifest().model();
  const auto in_range = [&](int32_t id) {
    return id >= 0 && static_cast<size_t>(id) < vocab->tokens.size();
  };
  if (vocab->bos_id < 0 && in_range(info.bos_token_id())) vocab->bos_id = info.bos_token_id();
  if (vocab->eos_id < 0 && in_range(info.eos_token_id())) vocab->eos_id = info.eos_token_id();
  return vocab;
}

absl::StatusOr<std::unique_ptr<Tokenizer>> TokenizerFromContainer(const format::Container& c,
                                                                  std::string* kind) {
  ZCPACK_ASSIGN_OR_RETURN(const size_t index, TokenizerBlobIndex(c));
  ZCPACK_ASSIGN_OR_RETURN(Vocabulary vocab, VocabularyFromContainer(c, index));
  const format::TokenizerBlob& chosen = c.manifest().tokenizers(static_cast<int>(index));
  if (kind != nullptr) *kind = chosen.kind();
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::Create(std::move(vocab));
  if (!tokenizer.ok()) {
    return absl::Status(tokenizer.status().code(),
                        absl::StrCat(BlobName(c, chosen), ": ", tokenizer.status().message()));
  }
  return tokenizer;
}

absl::StatusOr<Loader> ParseLoader(absl::string_view name) {
  for (Loader l : {Loader::kZcpack, Loader::kMmapNaive, Loader::kClassic, Loader::kPread,
                   Loader::kDirect}) {
    if (name == LoaderName(l)) return l;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown loader '", name, "' (expected zcpack, mmap, classic, pread or direct)"));
}

absl::string_view LoaderName(Loader loader) {
  switch (loader) {
    case Loader::kMmapNaive: return "mmap";
    case Loader::kClassic: return "classic";
    case Loader::kPread: return "pread";
    case Loader::kDirect: return "direct";
    default: return "zcpack";
  }
}

void Model::FreeDeleter::operator()(uint8_t* p) const { std::free(p); }

absl::StatusOr<Advice> ParseAdvice(absl::string_view name) {
  for (Advice a : {Advice::kNone, Advice::kSequential, Advice::kRandom, Advice::kWillNeed}) {
    if (name == AdviceName(a)) return a;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown advice '", name, "' (expected none, sequential, random or willneed)"));
}

absl::string_view AdviceName(Advice advice) {
  switch (advice) {
    case Advice::kSequential: return "sequential";
    case Advice::kRandom: return "random";
    case Advice::kWillNeed: return "willneed";
    default: return "none";
  }
}

Model::~Model() = default;

absl::StatusOr<std::unique_ptr<Model>> Model::Open(const std::string& path,
                                                   const OpenOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  std::unique_ptr<Model> model(new Model());
  model->options_ = options;
  format::ReaderOptions reader;
  reader.limits = options.limits;
  reader.verify_checksums = false;  // below, once the mapping is guarded
  ZCPACK_ASSIGN_OR_RETURN(model->container_, format::Container::Open(path, reader));
  const format::Container& c = *model->container_;
  if (c.file_descriptor() >= 0) {
    model->mapping_guard_ =
        std::make_unique<format::MappingGuard>(c.file_bytes().data(), c.file_bytes().size());
    if (!model->mapping_guard_->guarded()) {
      model->notes_.push_back(absl::StrCat(
          "more than ", format::MappingGuard::kMaxMappings,
          " models are open: a truncation of this file while mapped ends the process"));
    }
  }
  if (options.verify_checksums) {
    const absl::Status verified = c.VerifyChecksums(reader.checksum_threads);
    ZCPACK_RETURN_IF_ERROR(model->CheckMapping());  // a fault reads zeros: say so first
    ZCPACK_RETURN_IF_ERROR(verified);
  }
  if (options.memory.budget_bytes > 0 && options.loader != Loader::kZcpack) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": a memory budget applies to the zcpack loader only, not ", LoaderName(options.loader)));
  }
  switch (options.loader) {
    case Loader::kZcpack:
    case Loader::kMmapNaive:
      for (size_t i = 0; i < c.num_tensors(); ++i) model->tensor_data_.push_back(c.TensorData(i));
      break;
    default:
      ZCPACK_RETURN_IF_ERROR(model->LoadIntoBuffers());
      break;
  }
  ZCPACK_RETURN_IF_ERROR(model->Bind());
  // Under a budget the policy waits for the first session (ApplyBudget()).
  if (options.loader == Loader::kZcpack && options.memory.budget_bytes == 0) {
    model->ApplyMemoryPolicy();
  }
  ZCPACK_RETURN_IF_ERROR(model->CheckMapping());  // populate touches every page
  model->open_seconds_ =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return model;
}

absl::Status Model::Bind() {
  const format::Container& c = *container_;
  const format::ModelInfo& m = info();
  const std::string& file = c.path();
  // The model rules `zcpack verify` lists, up to the first problem. Only
  // access_order is tolerated: tensors out of forward order make loading
  // slower, not wrong.
  format::FirstProblem first({"access_order"});
  std::vector<format::ByteRange> layer_ranges;
  for (int l = 0; l < c.num_layers(); ++l) {
    layer_ranges.push_back(c.LayerRange(l).value_or(format::ByteRange{}));
  }
  format::CheckModel(c.manifest(), layer_ranges, c.alignment(), first);
  ZCPACK_RETURN_IF_ERROR(first.Status(file));
  // (role, layer) -> tensor index; CheckModel() guarantees uniqueness
  // and presence of everything the model needs.
  std::map<std::pair<int, int>, size_t> index;
  for (size_t i = 0; i < c.num_tensors(); ++i) {
    index[{static_cast<int>(c.tensor(i).role()), c.tensor(i).layer()}] = i;
  }
  auto view = [&](format::TensorRole role, int layer) -> absl::StatusOr<WeightView> {
    const size_t i = index.at({static_cast<int>(role), layer});
    const TensorEntry& t = c.tensor(i);
    if (t.shape_size() == 1) {
      return WeightView::FromBytes(t.dtype(), 1, t.shape(0), tensor_data_[i]);
    }
    return WeightView::FromTensor(t, tensor_data_[i]);
  };
  ZCPACK_ASSIGN_OR_RETURN(token_embedding_, view(format::ROLE_TOKEN_EMBEDDING, -1));
  ZCPACK_ASSIGN_OR_RETURN(output_norm_, view(format::ROLE_OUTPUT_NORM, -1));
  if (m.tied_embeddings()) {
    output_ = token_embedding_;
  } else {
    ZCPACK_ASSIGN_OR_RETURN(output_, view(format::ROLE_OUTPUT, -1));
  }
  layers_.resize(m.num_layers());
  for (int l = 0; l < static_cast<int>(m.num_layers()); ++l) {
    LayerWeights& w = layers_[static_cast<size_t>(l)];
    ZCPACK_ASSIGN_OR_RETURN(w.attn_norm, view(format::ROLE_ATTN_NORM, l));
    ZCPACK_ASSIGN_OR_RETURN(w.wq, view(format::ROLE_ATTN_Q, l));
    ZCPACK_ASSIGN_OR_RETURN(w.wk, view(format::ROLE_ATTN_K, l));
    ZCPACK_ASSIGN_OR_RETURN(w.wv, view(format::ROLE_ATTN_V, l));
    ZCPACK_ASSIGN_OR_RETURN(w.wo, view(format::ROLE_ATTN_OUTPUT, l));
    if (m.attention_bias()) {
      ZCPACK_ASSIGN_OR_RETURN(w.bq, view(format::ROLE_ATTN_Q_BIAS, l));
      ZCPACK_ASSIGN_OR_RETURN(w.bk, view(format::ROLE_ATTN_K_BIAS, l));
      ZCPACK_ASSIGN_OR_RETURN(w.bv, view(format::ROLE_ATTN_V_BIAS, l));
    }
    ZCPACK_ASSIGN_OR_RETURN(w.ffn_norm, view(format::ROLE_FFN_NORM, l));
    ZCPACK_ASSIGN_OR_RETURN(w.w_gate, view(format::ROLE_FFN_GATE, l));
    ZCPACK_ASSIGN_OR_RETURN(w.w_up, view(format::ROLE_FFN_UP, l));
    ZCPACK_ASSIGN_OR_RETURN(w.w_down, view(format::ROLE_FFN_DOWN, l));
  }
  return absl::OkStatus();
}

absl::Status Model::LoadIntoBuffers() {
  const format::Container& c = *container_;
  std::vector<internal::TensorBuffer> buffers;
  switch (options_.loader) {
    case Loader::kClassic: {
      ZCPACK_ASSIGN_OR_RETURN(buffers, internal::LoadClassic(c));
      break;
    }
    case Loader::kPread: {
      ZCPACK_ASSIGN_OR_RETURN(buffers, internal::LoadPread(c, /*direct=*/false));
      break;
    }
    default: {
      auto direct = internal::LoadPread(c, /*direct=*/true);
      if (!direct.ok() && direct.status().code() == absl::StatusCode::kUnimplemented) {
        notes_.push_back(absl::StrCat(direct.status().message(), "; using pread"));
        direct = internal::LoadPread(c, /*direct=*/false);
      }
      if (!direct.ok()) return direct.status();
      buffers = std::move(*direct);
      break;
    }
  }
  for (internal::TensorBuffer& b : buffers) {
    tensor_data_.push_back(b.data);
    owned_bytes_ += b.data.size();
    owned_.emplace_back(b.release());
  }
  return absl::OkStatus();
}

void Model::ApplyMemoryPolicy() const {
  const format::Container& c = *container_;
  const MemoryPolicy& policy = options_.memory;
  const std::span<const uint8_t> bytes = c.file_bytes();
  void* base = const_cast<uint8_t*>(bytes.data());
  const size_t size = bytes.size();
  if (c.file_descriptor() < 0 || size == 0) return;  // an in-memory container

  int advice = -1;
  switch (policy.advice) {
    case Advice::kSequential: advice = MADV_SEQUENTIAL; break;
    case Advice::kRandom: advice = MADV_RANDOM; break;
    case Advice::kWillNeed: advice = MADV_WILLNEED; break;
    default: break;
  }
  if (advice >= 0 && ::madvise(base, size, advice) != 0) {
    notes_.push_back(absl::StrCat("madvise(", AdviceName(policy.advice),
                                  ") refused: ", ErrnoText(errno)));
  }
  if (policy.lock) {
    if (::mlock(base, size) != 0) {
      const int e = errno;
      rlimit limit{};
      ::getrlimit(RLIMIT_MEMLOCK, &limit);
      notes_.push_back(absl::StrCat(
          "mlock of ", size, " bytes refused (", ErrnoText(e), "); RLIMIT_MEMLOCK is ",
          limit.rlim_cur == RLIM_INFINITY ? std::string("unlimited")
                                          : absl::StrCat(limit.rlim_cur, " bytes"),
          ": raise it (ulimit -l) or run without --mlock; pages stay evictable"));
    }
  } else if (policy.populate) {
    if (::madvise(base, size, MADV_POPULATE_READ) != 0) {
      // Older kernels: fault every page in by touching it.
      const long page = ::sysconf(_SC_PAGESIZE);
      volatile uint8_t sink = 0;
      for (size_t off = 0; off < size; off += static_cast<size_t>(page)) {
        sink = static_cast<uint8_t>(sink ^ bytes[off]);
      }
      (void)sink;
      notes_.push_back("MADV_POPULATE_READ unsupported; populated by touching every page");
    }
  }
  if (policy.prefetch_layers > 0) {
    std::vector<format::ByteRange> units;
    for (int l = 0; l < num_layers(); ++l) {
      units.push_back(c.LayerRange(l).value_or(format::ByteRange{}));
    }
    // After the layers: the output norm, then the output head (the token
    // embedding when tied), which the last step reads whole.
    for (format::TensorRole role : {format::ROLE_OUTPUT_NORM, info().tied_embeddings()
                                                                  ? format::ROLE_TOKEN_EMBEDDING
                                                                  : format::ROLE_OUTPUT}) {
      for (size_t i = 0; i < c.num_tensors(); ++i) {
        if (c.tensor(i).role() == role && c.tensor(i).layer() < 0) units.push_back(c.TensorExtent(i));
      }
    }
    // Nothing is requested yet: Open() reads no tensor data. The first
    // forward step's WillCompute(0) starts the readahead.
    prefetcher_ = std::make_unique<internal::Prefetcher>(c.file_descriptor(), bytes.data(),
                                                         std::move(units),
                                                         policy.prefetch_chunk_bytes);
  }
}

WeightLease::WeightLease(WeightLease&& other) noexcept
    : streamer_(other.streamer_),
      streamed_layer_(other.streamed_layer_),
      streamed_output_(other.streamed_output_) {
  layer_ = other.layer_ == &other.streamed_layer_ ? &streamed_layer_ : other.layer_;
  output_ = other.output_ == &other.streamed_output_ ? &streamed_output_ : other.output_;
  other.streamer_ = nullptr;
}

WeightLease::~WeightLease() {
  if (streamer_ != nullptr) streamer_->Release();
}

absl::StatusOr<WeightLease> Model::Acquire(int unit_of, const LayerWeights* layer,
                                           const WeightView* output) const {
  WeightLease lease;
  lease.layer_ = layer;
  lease.output_ = output;
  const int unit = stream_unit_.empty() ? -1 : stream_unit_[static_cast<size_t>(unit_of)];
  if (unit < 0) return lease;
  ZCPACK_ASSIGN_OR_RETURN(const uint8_t* bytes, streamer_->Acquire(static_cast<size_t>(unit)));
  lease.streamer_ = streamer_.get();
  // The views point into the mapping at the unit's range: move them to the
  // same place in the ring.
  const uint8_t* from = container_->file_bytes().data() + streamer_->unit(static_cast<size_t>(unit)).offset;
  const auto rebase = [&](WeightView& v) { v.data = bytes + (v.data - from); };
  if (layer != nullptr) {
    lease.streamed_layer_ = *layer;
    LayerWeights& w = lease.streamed_layer_;
    for (WeightView* v : {&w.attn_norm, &w.wq, &w.wk, &w.wv, &w.wo, &w.ffn_norm, &w.w_gate,
                          &w.w_up, &w.w_down}) {
      rebase(*v);
    }
    for (std::optional<WeightView>* b : {&w.bq, &w.bk, &w.bv}) {
      if (b->has_value()) rebase(**b);
    }
    lease.layer_ = &lease.streamed_layer_;
  }
  if (output != nullptr) {
    lease.streamed_output_ = *output;
    rebase(lease.streamed_output_);
    lease.output_ = &lease.streamed_output_;
  }
  return lease;
}

absl::StatusOr<WeightLease> Model::AcquireLayer(int layer) const {
  return Acquire(layer, &layers_[static_cast<size_t>(layer)], nullptr);
}

absl::StatusOr<WeightLease> Model::AcquireOutput() const {
  return Acquire(num_layers(), nullptr, &output_);
}

uint64_t Model::streamed_bytes() const { return streamer_ ? streamer_->bytes_read() : 0; }

absl::Status Model::ApplyBudget(uint64_t session_bytes) const {
  if (options_.memory.budget_bytes == 0 || options_.loader != Loader::kZcpack) {
    return absl::OkStatus();
  }
  std::call_once(budget_once_, [&] { budget_status_ = StartBudget(session_bytes); });
  return budget_status_;
}

absl::Status Model::StartBudget(uint64_t session_bytes) const {
  const format::Container& c = *container_;
  const MemoryPolicy& policy = options_.memory;
  const uint64_t process = policy.budget_process_bytes.value_or(ProcessAnonBytes());
  ZCPACK_ASSIGN_OR_RETURN(BudgetPlan plan, PlanMemoryBudget(*this, policy.budget_bytes,
                                                            process + session_bytes,
                                                            policy.stream_slots));
  budget_plan_ = std::make_unique<BudgetPlan>(plan);
  if (!plan.streams) {
    notes_.push_back(absl::StrCat("memory budget of ", plan.budget_bytes, " bytes holds the ",
                                  plan.file_bytes, "-byte file and ", plan.anon_bytes,
                                  " bytes of anonymous memory: mapped as without a budget"));
    ApplyMemoryPolicy();
    return absl::OkStatus();
  }
  const internal::BudgetUnits units = internal::BudgetUnitsOf(*this);
  std::vector<format::ByteRange> streamed, resident = {units.output_norm};
  stream_unit_.assign(static_cast<size_t>(num_layers()) + 1, -1);
  for (int l = 0; l < num_layers(); ++l) {
    const bool streams =
        std::find(plan.streamed_layers.begin(), plan.streamed_layers.end(), l) != plan.streamed_layers.end();
    if (streams) {
      stream_unit_[static_cast<size_t>(l)] = static_cast<int>(streamed.size());
      streamed.push_back(units.layers[static_cast<size_t>(l)]);
    } else {
      resident.push_back(units.layers[static_cast<size_t>(l)]);
    }
  }
  if (plan.output_streamed) {
    stream_unit_.back() = static_cast<int>(streamed.size());
    streamed.push_back(units.output);
  } else {
    resident.push_back(units.output);
  }
  // The resident part: read ahead in large requests (many in flight), then
  // locked so that it is never evicted, else faulted in and left mapped.
  const uint8_t* base = c.file_bytes().data();
  const uint64_t chunk = std::max<uint64_t>(policy.prefetch_chunk_bytes, 4096);
  for (const format::ByteRange& r : resident) {
    for (uint64_t off = 0; off < r.size; off += chunk) {
      ::readahead(c.file_descriptor(), static_cast<off64_t>(r.offset + off), std::min(chunk, r.size - off));
    }
  }
  std::string pinned = "locked with mlock";
  bool locking = true;
  for (const format::ByteRange& r : resident) {
    if (r.size == 0) continue;
    void* at = const_cast<uint8_t*>(base + r.offset);
    if (locking && ::mlock(at, r.size) != 0) {
      const int e = errno;
      rlimit limit{};
      ::getrlimit(RLIMIT_MEMLOCK, &limit);
      pinned = absl::StrCat(
          "touched and left mapped, not locked: mlock refused (", ErrnoText(e),
          "; RLIMIT_MEMLOCK is ",
          limit.rlim_cur == RLIM_INFINITY ? std::string("unlimited")
                                          : absl::StrCat(limit.rlim_cur, " bytes"),
          "), so the kernel may evict it under pressure");
      locking = false;
    }
    if (!locking && ::madvise(at, r.size, MADV_POPULATE_READ) != 0) {
      const long page = ::sysconf(_SC_PAGESIZE);
      volatile uint8_t sink = 0;
      for (uint64_t off = 0; off < r.size; off += static_cast<uint64_t>(page)) {
        sink = static_cast<uint8_t>(sink ^ base[r.offset + off]);
      }
      (void)sink;
    }
  }
  ZCPACK_RETURN_IF_ERROR(CheckMapping());
  std::string how = "nothing streamed";
  if (!streamed.empty()) {
    std::string note;
    ZCPACK_ASSIGN_OR_RETURN(streamer_, internal::WeightStreamer::Create(c, std::move(streamed),
                                                                        policy.stream_slots, &note));
    if (!note.empty()) notes_.push_back(note);
    how = absl::StrCat("read ahead into a ring of ", policy.stream_slots, " units (",
                       streamer_->ring_bytes(), " bytes) with ",
                       streamer_->direct() ? "O_DIRECT" : "pread and POSIX_FADV_DONTNEED");
  }
  notes_.push_back(absl::StrCat(
      "memory budget of ", plan.budget_bytes, " bytes: ", plan.resident_bytes,
      " bytes of weights resident (", pinned, "); ", plan.streamed_bytes_per_token,
      " bytes streamed per token (", plan.streamed_layers.size(), " of ", num_layers(), " layers",
      plan.output_streamed ? " and the output head" : "", "), ", how, "; anonymous memory ",
      plan.anon_bytes, " bytes planned plus a margin of ", plan.margin_bytes));
  return absl::OkStatus();
}

void Model::WillCompute(int layer) const {
  if (!prefetcher_) return;
  // Unit num_layers() is the output norm; num_layers() + 1 the output head.
  const int ahead = options_.memory.prefetch_layers;
  prefetcher_->RequestThrough(static_cast<size_t>(layer + ahead + (layer + ahead >= num_layers())));
}

absl::Status Model::CheckMapping() const {
  if (mapping_guard_ == nullptr || !mapping_guard_->failed()) return absl::OkStatus();
  return absl::AbortedError(absl::StrCat(container_->path(), ": truncated or unreadable while mapped"));
}

absl::StatusOr<const Tokenizer*> Model::tokenizer() const {
  std::call_once(tokenizer_once_, [this] { tokenizer_ = TokenizerFromContainer(*container_); });
  if (!tokenizer_.ok()) return tokenizer_.status();
  return tokenizer_->get();
}

size_t Model::prefetched_units() const { return prefetcher_ ? prefetcher_->issued() : 0; }

}  // namespace zcpack::runtime

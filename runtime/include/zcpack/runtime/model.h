// Model: a zcpack container opened for inference, zero-copy.
//
// Open() maps the container read-only (format::Container), runs the cheap
// structural checks (full checksums only when asked), checks the tensor table
// against the model's hyperparameters, applies the memory policy, and binds
// every weight a llama-family forward pass needs as a WeightView pointing
// into the mapping. No weight byte is read or copied by Open() (unless the
// policy asks to populate or lock); norms and biases, too, are read in place
// at compute time.
//
// The tokenizer the container carries is decoded on first use
// (tokenizer()), never by Open(): opening stays O(tensors) whatever the
// vocabulary's size, and a model used with token ids never pays for it.
//
// Lifetime: every view (WeightView, the container, its spans) points into the
// mapping and must not outlive the Model. Sessions keep a reference to their
// Model, which must outlive them; so does the Tokenizer that tokenizer()
// returns.
// Thread-safety: a Model is immutable after Open() apart from the
// prefetcher's progress, the tokenizer decoded once on first use and the
// memory budget applied once by the first Session::Create() (ApplyBudget():
// it adds its lines to notes()), all internally synchronised; any number of
// Sessions may use one Model from different threads (under a budget that
// streams, they take turns layer by layer).
//
// A file that changes under the mapping: the weights are read from a shared
// mapping of the file, so when another process truncates the file (or the
// disk fails) while the model is open, reading the lost pages raises SIGBUS,
// which would end the process. Open() therefore installs, once per process,
// a SIGBUS handler (sigaction(2); the disposition is process-wide). A fault
// inside the mapping of an open model is caught: the handler maps zero-filled
// pages over the rest of that mapping, so the reading thread (the caller, a
// pool worker or the prefetcher) carries on, and marks the model failed. The
// computation in progress ends with Aborted "<file>: truncated or unreadable
// while mapped": from Session::Evaluate() and Generate(), and from Open()
// itself when populating or verifying checksums met the fault; CheckMapping()
// reports it to code that reads weight views directly (views read zeros from
// the failed page on). A failed model stays failed: destroy it and open the
// file again. Any other SIGBUS goes to the handler installed before ours (or
// the default action). Limits: an application that installs its own SIGBUS
// handler after opening a model must chain to the previous one or such faults
// end the process again; at most 256 models are guarded at once (a note says
// when one is not); the copying loaders read with pread(2) and do not fault.

#ifndef ZCPACK_RUNTIME_MODEL_H_
#define ZCPACK_RUNTIME_MODEL_H_

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "zcpack/format/container_reader.h"
#include "zcpack/format/mapping_guard.h"
#include "zcpack/runtime/kernels.h"
#include "zcpack/runtime/memory_policy.h"
#include "zcpack/runtime/tokenizer.h"

namespace zcpack::runtime {

// How the weights get into memory. kZcpack is the product; the others exist
// so that the benchmark compares loaders on the same file and forward pass.
enum class Loader {
  kZcpack,     // mapped zero-copy, with the memory policy (prefetch ahead)
  kMmapNaive,  // mapped zero-copy, no hints at all (policy ignored)
  kClassic,    // read the whole file into one buffer, then copy each tensor
               // into its own allocation, then free the buffer (2x peak)
  kPread,      // pread each tensor into its own buffer
  kDirect,     // O_DIRECT reads of each tensor's aligned extent into aligned
               // buffers (bypasses the page cache; falls back to pread with a
               // note where the file system refuses O_DIRECT)
};

absl::StatusOr<Loader> ParseLoader(absl::string_view name);  // "zcpack", "mmap", "classic", "pread", "direct"
absl::string_view LoaderName(Loader loader);

struct OpenOptions {
  Loader loader = Loader::kZcpack;
  MemoryPolicy memory;
  // Verify every tensor checksum at open (reads the whole file).
  bool verify_checksums = false;
  format::ReaderLimits limits;
};

// The weights of one decoder layer, in the order the forward pass reads them.
// Norms and biases are 1 x n views.
struct LayerWeights {
  WeightView attn_norm;
  WeightView wq, wk, wv, wo;
  std::optional<WeightView> bq, bk, bv;
  WeightView ffn_norm;
  WeightView w_gate, w_up, w_down;
};

namespace internal {
class Prefetcher;
class WeightStreamer;
}  // namespace internal

struct BudgetPlan;  // memory_plan.h

// WeightLease: the weights of one layer, or the output head, while the
// forward pass reads them (Model::AcquireLayer(), AcquireOutput()). Views
// into the mapping for resident weights; under a memory budget, views into
// the ring the weights were streamed into, which stay valid until the lease
// is destroyed (the ring slot is then refilled). Move-only; must not
// outlive its Model.
class WeightLease {
 public:
  WeightLease(WeightLease&& other) noexcept;
  WeightLease& operator=(WeightLease&&) = delete;
  ~WeightLease();
  const LayerWeights& layer() const { return *layer_; }
  const WeightView& output() const { return *output_; }

 private:
  friend class Model;
  WeightLease() = default;
  internal::WeightStreamer* streamer_ = nullptr;  // released on destruction
  const LayerWeights* layer_ = nullptr;
  const WeightView* output_ = nullptr;
  LayerWeights streamed_layer_;   // layer_ points here when streamed
  WeightView streamed_output_;    // output_ points here when streamed
};

class Model {
 public:
  // Open(): see the file comment. Errors: the container reader's codes
  // (format/SPEC.md, "Errors"); DataLoss when the tensors do not match the
  // model info; Unimplemented for an architecture or RoPE layout the runtime
  // cannot run. Memory-policy hints that the OS refuses are not errors: they
  // are listed in notes().
  static absl::StatusOr<std::unique_ptr<Model>> Open(const std::string& path,
                                                     const OpenOptions& options = {});

  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;
  ~Model();

  const format::Container& container() const { return *container_; }
  const format::ModelInfo& info() const { return container_->manifest().model(); }
  const OpenOptions& options() const { return options_; }

  const WeightView& token_embedding() const { return token_embedding_; }
  const WeightView& output_norm() const { return output_norm_; }
  // The output head; the token embedding when embeddings are tied.
  const WeightView& output() const { return output_; }
  int num_layers() const { return static_cast<int>(layers_.size()); }
  const LayerWeights& layer(int index) const { return layers_[static_cast<size_t>(index)]; }

  // WillCompute(): the forward pass is about to read layer `layer`
  // (num_layers() for the output head): keeps the prefetcher
  // options().memory.prefetch_layers ahead. Cheap; thread-safe.
  void WillCompute(int layer) const;

  // AcquireLayer(): layer `layer`'s weights for the forward pass: the
  // views of layer() for a resident layer; for one that a memory budget
  // streams (MemoryPolicy::budget_bytes), the same views rebased into the
  // ring, once the reader has read them (blocks until then). Aborted naming
  // the file when the streamed read failed. Thread-safe; under a budget,
  // sessions sharing the model take turns (one streamed lease at a time).
  absl::StatusOr<WeightLease> AcquireLayer(int layer) const;
  // AcquireOutput(): the output head (output()) the same way.
  absl::StatusOr<WeightLease> AcquireOutput() const;

  // ApplyBudget(): applies options().memory.budget_bytes once, for a session
  // whose planned anonymous memory is `session_bytes` (Session::Create()
  // calls it; later calls return the first one's status): PlanMemoryBudget()
  // with the process's anonymous memory (measured, or
  // MemoryPolicy::budget_process_bytes); then either the memory policy as
  // without a budget (the whole file fits), or the planned part of the
  // weights locked (else touched) resident and a streamer for the rest.
  // PlanMemoryBudget()'s ResourceExhausted when the budget is too small;
  // OK and nothing done without a budget.
  absl::Status ApplyBudget(uint64_t session_bytes) const;
  // The budget's plan once ApplyBudget() has applied one, else null.
  const BudgetPlan* budget_plan() const { return budget_plan_.get(); }
  // Bytes of weights read from the file into the ring so far (0 without
  // streaming).
  uint64_t streamed_bytes() const;

  // CheckMapping(): OK, or Aborted "<file>: truncated or unreadable while
  // mapped" once a read of the mapping has faulted (see the file comment).
  // Cheap (one atomic load); thread-safe.
  absl::Status CheckMapping() const;

  // tokenizer(): the container's tokenizer, decoded from its manifest's
  // tokenizer blobs on the first call (thread-safe; later calls return the
  // same Tokenizer, or the same error). The first blob present, in the order
  // "gguf-metadata" (VocabularyFromGgufJson), "tokenizer.json"
  // (VocabularyFromHfTokenizerJson), "tokenizer.model"
  // (VocabularyFromSentencePieceModel), is read and decompressed
  // (format::Container::TokenizerData()) and decoded; the others are not
  // tried. Where the vocabulary names no BOS or EOS id, the model info's is
  // used; where both name one and they differ, the vocabulary's wins.
  // Errors, each naming the file and, where there is one, the blob: NotFound
  // when the container carries no tokenizer (or only kinds the runtime
  // cannot read); TokenizerData()'s DataLoss (checksum, bad zstd frame),
  // OutOfRange (over 1 GiB decoded) and Aborted (file truncated while
  // mapped); the loader's InvalidArgument for a vocabulary it refuses. The
  // Tokenizer lives as long as the Model.
  absl::StatusOr<const Tokenizer*> tokenizer() const;

  // Hints the OS refused or that degraded (one line each).
  const std::vector<std::string>& notes() const { return notes_; }
  // Seconds Open() took.
  double open_seconds() const { return open_seconds_; }
  // Readahead units issued so far by the prefetcher (0 without one).
  size_t prefetched_units() const;
  // Bytes of weights the loader copied into its own allocations (0 for the
  // mapped loaders).
  uint64_t owned_bytes() const { return owned_bytes_; }

 private:
  Model() = default;
  absl::Status LoadIntoBuffers();
  absl::Status Bind();
  void ApplyMemoryPolicy() const;
  absl::Status StartBudget(uint64_t session_bytes) const;
  absl::StatusOr<WeightLease> Acquire(int unit_of, const LayerWeights* layer,
                                      const WeightView* output) const;

  OpenOptions options_;
  std::unique_ptr<format::Container> container_;
  // Registers container_'s mapping with the SIGBUS handler; declared after
  // it, so that it unregisters before the mapping goes.
  std::unique_ptr<format::MappingGuard> mapping_guard_;
  WeightView token_embedding_;
  WeightView output_norm_;
  WeightView output_;
  std::vector<LayerWeights> layers_;
  // Written by Open() and by the first ApplyBudget() (before the session
  // that applies it exists).
  mutable std::vector<std::string> notes_;
  double open_seconds_ = 0;
  mutable std::unique_ptr<internal::Prefetcher> prefetcher_;
  // The memory budget, applied once by ApplyBudget().
  mutable std::once_flag budget_once_;
  mutable absl::Status budget_status_;
  mutable std::unique_ptr<BudgetPlan> budget_plan_;
  mutable std::unique_ptr<internal::WeightStreamer> streamer_;
  // Per layer, then the output head: the streamer's unit, or -1 (resident).
  mutable std::vector<int> stream_unit_;
  // Per-tensor data the views point to: into the mapping, or into owned_.
  std::vector<std::span<const uint8_t>> tensor_data_;
  struct FreeDeleter {
    void operator()(uint8_t* p) const;
  };
  std::vector<std::unique_ptr<uint8_t, FreeDeleter>> owned_;
  uint64_t owned_bytes_ = 0;
  // tokenizer(): decoded once, on first use.
  mutable std::once_flag tokenizer_once_;
  mutable absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer_;
};

}  // namespace zcpack::runtime

#endif  // ZCPACK_RUNTIME_MODEL_H_

#include "zcpack/runtime/memory_plan.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels_internal.h"
#include "loaders.h"
#include "session_buffers.h"
#include "zcpack/runtime/thread_pool.h"

namespace zcpack::runtime {
namespace internal {

std::optional<uint64_t> CheckedProduct(std::initializer_list<uint64_t> factors) {
  uint64_t product = 1;
  for (uint64_t f : factors) {
    if (__builtin_mul_overflow(product, f, &product)) return std::nullopt;
  }
  return product;
}

std::optional<uint64_t> CheckedSum(std::initializer_list<std::optional<uint64_t>> terms) {
  uint64_t sum = 0;
  for (const std::optional<uint64_t>& t : terms) {
    if (!t || __builtin_add_overflow(sum, *t, &sum)) return std::nullopt;
  }
  return sum;
}

std::optional<SessionBufferSizes> SessionBuffersFor(const format::ModelInfo& m, uint64_t context) {
  const std::optional<uint64_t> kv =
      CheckedProduct({m.num_layers(), m.num_kv_heads(), context, m.head_dim()});
  const std::optional<uint64_t> rope = CheckedProduct({context, m.head_dim() / 2});
  const std::optional<uint64_t> scores = CheckedProduct({m.num_heads(), context});
  if (!kv || !rope || !scores) return std::nullopt;
  SessionBufferSizes s;
  s.kv_cache = *kv;
  s.rope_table = *rope;
  s.logits = m.vocab_size();
  s.norm_weights = m.hidden_size();
  s.bias_q = uint64_t{m.num_heads()} * m.head_dim();
  s.bias_kv = uint64_t{m.num_kv_heads()} * m.head_dim();
  s.scores = *scores;
  return s;
}

std::optional<BatchScratchSizes> BatchScratchFor(const format::ModelInfo& m, uint64_t n) {
  const std::optional<uint64_t> hidden = CheckedProduct({n, m.hidden_size()});
  const std::optional<uint64_t> q = CheckedProduct({n, m.num_heads(), m.head_dim()});
  const std::optional<uint64_t> kv = CheckedProduct({n, m.num_kv_heads(), m.head_dim()});
  const std::optional<uint64_t> ffn = CheckedProduct({n, m.intermediate_size()});
  if (!hidden || !q || !kv || !ffn) return std::nullopt;
  return BatchScratchSizes{*hidden, *q, *kv, *ffn};
}

std::optional<AttentionScratchSizes> AttentionScratchFor(const format::ModelInfo& m, uint64_t n,
                                                         uint64_t total) {
  AttentionScratchSizes s;
  const uint64_t hd = m.head_dim();
  if (n < kOnlineAttentionBatch) {
    s.query = hd;
    s.per_key = total;
    s.half = hd;
    return s;
  }
  const std::optional<uint64_t> widened = CheckedProduct({total, hd});
  const std::optional<uint64_t> scores = CheckedProduct({n, total});
  const std::optional<uint64_t> queries = CheckedProduct({n, hd});
  if (!widened || !scores || !queries) return std::nullopt;
  s.widened = *widened;
  s.batch_scores = *scores;
  s.batch_queries = *queries;
  s.half = std::max(hd, total);
  return s;
}

}  // namespace internal

namespace {

using internal::CheckedProduct;
using internal::CheckedSum;

// Bytes of `count` elements of T, or nullopt on overflow.
template <typename T>
std::optional<uint64_t> Bytes(uint64_t count) {
  return CheckedProduct({count, sizeof(T)});
}

absl::Status TooLarge(const MemoryPlanOptions& options) {
  return absl::OutOfRangeError(absl::StrCat("a context of ", options.context, " positions and a batch of ",
                                            options.batch, " tokens need more than 2^64 bytes"));
}

}  // namespace

uint64_t AvailableMemoryBytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  std::string unit;
  while (meminfo >> key >> kib) {
    if (key == "MemAvailable:") return kib << 10;
    std::getline(meminfo, unit);  // the rest of the line ("kB")
  }
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page_size = ::sysconf(_SC_PAGESIZE);
  return pages > 0 && page_size > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size)
                                    : std::numeric_limits<uint64_t>::max();
}

int DefaultContext(const format::ModelInfo& model) {
  const uint32_t limit = model.max_position_embeddings();
  return static_cast<int>(limit == 0 ? 2048 : std::min<uint32_t>(limit, 2048));
}

int SessionThreads(int requested) {
  const int cpus = ThreadPool::AvailableCpus();
  if (requested <= 0) return std::max(cpus, 1);
  return std::clamp(requested, 1, std::max(cpus, 1));
}

absl::StatusOr<SessionMemory> PlanSessionMemory(const Model& model,
                                                const MemoryPlanOptions& options) {
  const format::ModelInfo& m = model.info();
  SessionMemory plan;
  plan.context = options.context == 0 ? DefaultContext(m) : options.context;
  plan.batch = options.batch == 0 ? plan.context : options.batch;
  plan.threads = SessionThreads(options.threads);
  if (plan.context <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("a context of ", plan.context, " positions"));
  }
  if (plan.batch <= 0 || plan.batch > plan.context) {
    return absl::InvalidArgumentError(absl::StrCat("a batch of ", plan.batch,
                                                   " tokens: give 1 to the context's ",
                                                   plan.context, " positions"));
  }
  const uint64_t context = static_cast<uint64_t>(plan.context);
  const uint64_t batch = static_cast<uint64_t>(plan.batch);
  const uint64_t threads = static_cast<uint64_t>(plan.threads);
  const MemoryPlanOptions resolved = {plan.context, plan.batch, plan.threads};

  const std::optional<internal::SessionBufferSizes> session = internal::SessionBuffersFor(m, context);
  const std::optional<internal::BatchScratchSizes> scratch = internal::BatchScratchFor(m, batch);
  // A thread keeps the largest attention buffers it has seen: those of the
  // prompt (batch tokens from position 0) and those of the last decoding
  // step (one token against the whole context).
  const std::optional<internal::AttentionScratchSizes> prompt =
      internal::AttentionScratchFor(m, batch, batch);
  const std::optional<internal::AttentionScratchSizes> decode =
      internal::AttentionScratchFor(m, 1, context);
  if (!session || !scratch || !prompt || !decode) return TooLarge(resolved);

  const std::optional<uint64_t> kv = CheckedProduct({2, session->kv_cache, sizeof(uint16_t)});
  const std::optional<uint64_t> rope = CheckedProduct({2, session->rope_table, sizeof(float)});
  const std::optional<uint64_t> small = CheckedSum(
      {Bytes<float>(session->norm_weights), Bytes<float>(session->bias_q),
       CheckedProduct({2, session->bias_kv, sizeof(float)}), Bytes<float>(session->scores)});
  const std::optional<uint64_t> batch_bytes =
      CheckedSum({CheckedProduct({3, scratch->hidden, sizeof(float)}),
                  CheckedProduct({2, scratch->q, sizeof(float)}),
                  CheckedProduct({2, scratch->kv, sizeof(float)}),
                  CheckedProduct({2, scratch->ffn, sizeof(float)})});
  const auto largest = [&](uint64_t internal::AttentionScratchSizes::*field) {
    return std::max(prompt.value().*field, decode.value().*field);
  };
  const std::optional<uint64_t> per_thread = CheckedSum(
      {Bytes<float>(largest(&internal::AttentionScratchSizes::query)),
       CheckedProduct({3, largest(&internal::AttentionScratchSizes::per_key), sizeof(float)}),
       CheckedProduct({2, largest(&internal::AttentionScratchSizes::widened), sizeof(float)}),
       Bytes<float>(largest(&internal::AttentionScratchSizes::batch_scores)),
       Bytes<float>(largest(&internal::AttentionScratchSizes::batch_queries)),
       Bytes<uint16_t>(largest(&internal::AttentionScratchSizes::half))});
  const std::optional<uint64_t> attention =
      per_thread ? CheckedProduct({*per_thread, threads}) : std::nullopt;

  // The kernels' buffers: every product of the forward pass at the batch
  // (decoding steps multiply one token, which needs no more), the head by
  // one token, and the rows decoded one at a time.
  std::vector<kernels_internal::WeightUse> uses = {{&model.token_embedding(), 0},
                                                   {&model.output_norm(), 0},
                                                   {&model.output(), 1}};
  for (int l = 0; l < model.num_layers(); ++l) {
    const LayerWeights& w = model.layer(l);
    for (const WeightView* v : {&w.wq, &w.wk, &w.wv, &w.wo, &w.w_gate, &w.w_up, &w.w_down}) {
      uses.push_back({v, static_cast<size_t>(batch)});
    }
    for (const WeightView* v : {&w.attn_norm, &w.ffn_norm}) uses.push_back({v, 0});
    for (const std::optional<WeightView>* b : {&w.bq, &w.bk, &w.bv}) {
      if (b->has_value()) uses.push_back({&**b, 0});
    }
  }
  const uint64_t kernels = kernels_internal::KernelScratchBytes(uses, plan.threads);

  const std::optional<uint64_t> logits = Bytes<float>(session->logits);
  const std::optional<uint64_t> total =
      CheckedSum({kv, rope, logits, small, batch_bytes, attention, kernels});
  if (!total) return TooLarge(resolved);
  plan.kv_cache_bytes = *kv;
  plan.rope_tables_bytes = *rope;
  plan.logits_bytes = *logits;
  plan.small_buffers_bytes = *small;
  plan.batch_scratch_bytes = *batch_bytes;
  plan.attention_scratch_bytes = *attention;
  plan.activation_scratch_bytes = kernels;
  plan.total_bytes = *total;
  plan.thread_stacks_reserved_bytes = (threads - 1) * ThreadPool::WorkerStackBytes();
  return plan;
}

LoaderMemory PlanLoaderMemory(const format::Container& c, Loader loader) {
  LoaderMemory plan;
  plan.loader = loader;
  internal::LoadFootprint copies;
  switch (loader) {
    case Loader::kZcpack:
    case Loader::kMmapNaive:
      plan.mapped = true;
      plan.weights_file_bytes = c.file_size();
      return plan;
    case Loader::kClassic: copies = internal::ClassicFootprint(c); break;
    case Loader::kPread: copies = internal::PreadFootprint(c, /*direct=*/false); break;
    case Loader::kDirect: copies = internal::PreadFootprint(c, /*direct=*/true); break;
  }
  plan.open_peak_anon_bytes = copies.peak_bytes;
  plan.weights_anon_bytes = copies.kept_bytes;
  // The copying loaders map the file too, but touch only the header (before
  // the data) and the manifest (at the end of the file).
  const format::ContainerHeader& h = c.header();
  plan.weights_file_bytes = h.data_offset + (c.file_size() - h.manifest_offset);
  return plan;
}

WeightsFootprint PlanWeights(const Model& model) {
  const format::Container& c = model.container();
  WeightsFootprint plan;
  plan.file_bytes = c.file_size();
  for (size_t i = 0; i < c.num_tensors(); ++i) {
    const format::TensorEntry& t = c.tensor(i);
    plan.tensor_bytes += t.nbytes();
    uint64_t elements = 1;
    for (uint64_t d : t.shape()) elements *= d;
    plan.parameters += elements;
  }
  plan.bits_per_weight = plan.parameters > 0 ? 8.0 * static_cast<double>(plan.tensor_bytes) /
                                                   static_cast<double>(plan.parameters)
                                             : 0.0;
  const auto bytes = [](const WeightView& w) { return w.rows * w.row_bytes(); };
  uint64_t read = bytes(model.output_norm()) + bytes(model.output());
  // A tied head is the embedding itself: its row is already counted.
  if (model.output().data != model.token_embedding().data) {
    read += model.token_embedding().row_bytes();
  }
  for (int l = 0; l < model.num_layers(); ++l) {
    const LayerWeights& w = model.layer(l);
    for (const WeightView* v : {&w.attn_norm, &w.wq, &w.wk, &w.wv, &w.wo, &w.ffn_norm, &w.w_gate,
                                &w.w_up, &w.w_down}) {
      read += bytes(*v);
    }
    for (const std::optional<WeightView>* b : {&w.bq, &w.bk, &w.bv}) {
      if (b->has_value()) read += bytes(**b);
    }
  }
  plan.token_read_bytes = read;
  return plan;
}

uint64_t ProcessAnonBytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("RssAnon:", 0) == 0) {
      return static_cast<uint64_t>(std::strtoull(line.c_str() + 8, nullptr, 10)) << 10;
    }
  }
  return 0;
}

namespace internal {

BudgetUnits BudgetUnitsOf(const Model& model) {
  const format::Container& c = model.container();
  BudgetUnits units;
  for (int l = 0; l < model.num_layers(); ++l) {
    units.layers.push_back(c.LayerRange(l).value_or(format::ByteRange{}));
  }
  const format::TensorRole head =
      model.info().tied_embeddings() ? format::ROLE_TOKEN_EMBEDDING : format::ROLE_OUTPUT;
  for (size_t i = 0; i < c.num_tensors(); ++i) {
    const format::TensorEntry& t = c.tensor(i);
    if (t.layer() >= 0) continue;
    if (t.role() == head) units.output = c.TensorExtent(i);
    if (t.role() == format::ROLE_OUTPUT_NORM) units.output_norm = c.TensorExtent(i);
  }
  return units;
}

bool ResidentInSpread(int layer, int resident, int layers) {
  const auto at = [&](int l) { return static_cast<int64_t>(l) * resident / layers; };
  return at(layer + 1) > at(layer);
}

}  // namespace internal

absl::StatusOr<BudgetPlan> PlanMemoryBudget(const Model& model, uint64_t budget_bytes,
                                            uint64_t anon_bytes, int ring_slots) {
  const format::Container& c = model.container();
  if (ring_slots < 1) {
    return absl::InvalidArgumentError(absl::StrCat("a ring of ", ring_slots, " units"));
  }
  BudgetPlan plan;
  plan.budget_bytes = budget_bytes;
  plan.anon_bytes = anon_bytes;
  plan.margin_bytes = kBudgetMarginBytes;
  plan.file_bytes = c.file_size();
  const uint64_t fixed = anon_bytes + plan.margin_bytes;
  if (budget_bytes >= fixed && budget_bytes - fixed >= plan.file_bytes) return plan;  // fits
  plan.streams = true;
  plan.ring_slots = ring_slots;
  const internal::BudgetUnits units = internal::BudgetUnitsOf(model);
  const int layers = static_cast<int>(units.layers.size());
  uint64_t largest_layer = 0;
  for (const format::ByteRange& r : units.layers) largest_layer = std::max(largest_layer, r.size);
  const uint64_t slots = static_cast<uint64_t>(ring_slots);
  const uint64_t room = budget_bytes > fixed ? budget_bytes - fixed : 0;
  // Either the head resident or streamed; the one that keeps more resident.
  std::optional<BudgetPlan> best;
  for (bool output_streamed : {false, true}) {
    const uint64_t slot = output_streamed ? std::max(largest_layer, units.output.size) : largest_layer;
    const uint64_t needed = units.output_norm.size + slots * slot +
                            (output_streamed ? 0 : units.output.size);
    if (needed > room) continue;
    BudgetPlan candidate = plan;
    candidate.output_streamed = output_streamed;
    const uint64_t left = room - needed;
    const int resident = largest_layer == 0
                             ? layers
                             : static_cast<int>(std::min<uint64_t>(left / largest_layer,
                                                                   static_cast<uint64_t>(layers)));
    candidate.resident_bytes = units.output_norm.size + (output_streamed ? 0 : units.output.size);
    uint64_t largest_streamed = output_streamed ? units.output.size : 0;
    candidate.streamed_bytes_per_token = output_streamed ? units.output.size : 0;
    for (int l = 0; l < layers; ++l) {
      const uint64_t size = units.layers[static_cast<size_t>(l)].size;
      if (internal::ResidentInSpread(l, resident, layers)) {
        candidate.resident_bytes += size;
      } else {
        candidate.streamed_layers.push_back(l);
        candidate.streamed_bytes_per_token += size;
        largest_streamed = std::max(largest_streamed, size);
      }
    }
    candidate.ring_bytes = slots * largest_streamed;
    if (!best || candidate.resident_bytes > best->resident_bytes) best = std::move(candidate);
  }
  if (!best) {
    const uint64_t smallest_ring = slots * largest_layer;
    return absl::ResourceExhaustedError(absl::StrCat(
        c.path(), ": a memory budget of ", budget_bytes, " bytes is too small: it must hold ",
        anon_bytes, " bytes of anonymous memory (this process and its session, from the memory "
        "plan), a margin of ", plan.margin_bytes, " bytes, the output norm (",
        units.output_norm.size, " bytes) and a ring of at least ", ring_slots, " x ",
        largest_layer, " = ", smallest_ring, " bytes (the largest layer) plus the ",
        units.output.size, "-byte output head, at least ",
        fixed + units.output_norm.size + smallest_ring + units.output.size, " bytes in all"));
  }
  return *best;
}

}  // namespace zcpack::runtime

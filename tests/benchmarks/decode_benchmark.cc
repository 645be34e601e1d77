// decode_benchmark: the runtime's open time, and its compute speed (decode
// and prompt tokens/s) against the memory-bandwidth bound.
//
// Usage: decode_benchmark MODEL.zcpack [--threads 1,2] [--tokens N] [--prompt N]
//                         [--runs N] [--opens N]
// Prints:
//   - Model::Open() time, warm page cache (median, min, max over --opens);
//   - weight bytes read per decoded token (every layer tensor, the final norm,
//     the output head, one embedding row);
//   - for each thread count: decode tokens/s over --tokens greedy tokens
//     (after a 16-token warm-up) and prompt tokens/s for a --prompt-token
//     prompt (ids 1..N, one batch, a fresh session each run), medians (min,
//     max) over --runs; this machine's memory read bandwidth with that many
//     threads (sum of a 1 GiB buffer, best of 5); and the fraction of it that
//     decode reaches: bytes/token x tokens/s / bandwidth. Above 1 means part
//     of the weights came from the last-level cache. Nothing is asserted.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "zcpack/format/dtype.h"
#include "zcpack/runtime/model.h"
#include "zcpack/runtime/session.h"

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Read bandwidth: each thread sums its slice of a buffer far larger than the
// caches; the best of `reps` passes.
double ReadBandwidth(int threads, size_t bytes, int reps) {
  std::vector<uint64_t> buffer(bytes / sizeof(uint64_t));
  for (size_t i = 0; i < buffer.size(); ++i) buffer[i] = i;
  double best = 0;
  std::vector<uint64_t> sums(static_cast<size_t>(threads));
  for (int r = 0; r < reps; ++r) {
    const auto start = Clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        const size_t lo = buffer.size() * t / threads, hi = buffer.size() * (t + 1) / threads;
        uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (size_t i = lo; i + 4 <= hi; i += 4) {
          s0 += buffer[i];
          s1 += buffer[i + 1];
          s2 += buffer[i + 2];
          s3 += buffer[i + 3];
        }
        sums[static_cast<size_t>(t)] = s0 + s1 + s2 + s3;
      });
    }
    for (auto& th : pool) th.join();
    best = std::max(best, bytes / Seconds(start, Clock::now()));
  }
  volatile uint64_t sink = sums[0];
  (void)sink;
  return best;
}


struct Summary {
  double median, min, max;
};

Summary Summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  const double median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  return {median, v.front(), v.back()};
}

std::vector<int> ParseList(const std::string& text) {
  std::vector<int> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    out.push_back(std::atoi(text.substr(start, comma - start).c_str()));
    start = comma + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: decode_benchmark MODEL.zcpack [--threads 1,2] [--tokens N] [--prompt N] "
                 "[--runs N] [--opens N]\n");
    return 2;
  }
  const std::string path = argv[1];
  std::vector<int> thread_counts = {1, 2};
  int tokens = 128, prompt_tokens = 128, runs = 5, opens = 20;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const int value = std::atoi(argv[i + 1]);
    if (flag == "--threads") thread_counts = ParseList(argv[i + 1]);
    else if (flag == "--tokens") tokens = value;
    else if (flag == "--prompt") prompt_tokens = value;
    else if (flag == "--runs") runs = value;
    else if (flag == "--opens") opens = value;
  }
  runs = std::max(runs, 1);

  // Open time, warm: the header and manifest pages are cached after the first.
  std::vector<double> open_ms;
  for (int i = 0; i < opens + 1; ++i) {
    const auto start = Clock::now();
    auto model = zcpack::runtime::Model::Open(path);
    const auto end = Clock::now();
    if (!model.ok()) {
      std::fprintf(stderr, "%s\n", std::string(model.status().message()).c_str());
      return 1;
    }
    if (i > 0) open_ms.push_back(Seconds(start, end) * 1e3);
  }
  std::sort(open_ms.begin(), open_ms.end());

  auto model = zcpack::runtime::Model::Open(path);
  const auto& c = (*model)->container();
  uint64_t per_token = 0;
  for (size_t i = 0; i < c.num_tensors(); ++i) {
    const auto& t = c.tensor(i);
    if (t.role() == zcpack::format::ROLE_TOKEN_EMBEDDING) {
      per_token += t.nbytes() / t.shape(0);  // one row
      if ((*model)->info().tied_embeddings()) per_token += t.nbytes();  // it is the head too
    } else {
      per_token += t.nbytes();
    }
  }
  std::printf("model            %s (%.1f MiB, %zu tensors)\n", path.c_str(), c.file_size() / 1048576.0,
              c.num_tensors());
  std::printf("open (warm)      median %.3f ms, min %.3f ms, max %.3f ms over %d opens\n",
              open_ms[open_ms.size() / 2], open_ms.front(), open_ms.back(), opens);
  std::printf("weights/token    %.1f MiB\n", per_token / 1048576.0);

  std::vector<int32_t> prompt(static_cast<size_t>(prompt_tokens));
  for (int i = 0; i < prompt_tokens; ++i) {
    prompt[static_cast<size_t>(i)] = static_cast<int32_t>(1 + i % ((*model)->info().vocab_size() - 1));
  }
  const int context = std::max(tokens + 32, prompt_tokens + 1);
  for (int threads : thread_counts) {
    std::vector<double> decode, prefill;
    for (int r = 0; r < runs; ++r) {
      // Random weights: positions past the recorded training length cost the
      // same and mean as little as any other, as in llama-bench.
      auto session = zcpack::runtime::Session::Create(
          **model, {.max_context = context, .allow_longer_context = true, .threads = threads});
      if (!session.ok()) {
        std::fprintf(stderr, "%s\n", std::string(session.status().message()).c_str());
        return 1;
      }
      const std::vector<int32_t> one = {1};
      zcpack::runtime::GenerateStats warm, stats;
      (void)zcpack::runtime::Generate(**session, one, 16, {}, false, &warm);
      (*session)->Reset();
      auto out = zcpack::runtime::Generate(**session, one, tokens, {}, false, &stats);
      if (!out.ok()) {
        std::fprintf(stderr, "%s\n", std::string(out.status().message()).c_str());
        return 1;
      }
      decode.push_back(stats.tokens_per_second());
      (*session)->Reset();
      const auto start = Clock::now();
      auto logits = (*session)->Evaluate(prompt);
      const double seconds = Seconds(start, Clock::now());
      if (!logits.ok()) {
        std::fprintf(stderr, "%s\n", std::string(logits.status().message()).c_str());
        return 1;
      }
      prefill.push_back(prompt_tokens / seconds);
    }
    const Summary d = Summarize(decode);
    const Summary p = Summarize(prefill);
    const double bandwidth = ReadBandwidth(threads, size_t{1} << 30, 5);
    std::printf("%d thread%s\n", threads, threads == 1 ? "" : "s");
    std::printf("  decode         %.1f tokens/s (%.1f-%.1f; %d tokens, greedy, %d runs)\n", d.median,
                d.min, d.max, tokens, runs);
    std::printf("  prompt         %.1f tokens/s (%.1f-%.1f; %d tokens in one batch)\n", p.median,
                p.min, p.max, prompt_tokens);
    std::printf("  read bandwidth %.2f GB/s (1 GiB buffer, best of 5)\n", bandwidth / 1e9);
    std::printf("  weights read   %.2f GB/s in decode = %.2f of the read bandwidth (bound %.1f tokens/s)\n",
                per_token * d.median / 1e9, per_token * d.median / bandwidth, bandwidth / per_token);
  }
  return 0;
}

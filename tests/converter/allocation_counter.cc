#include "tests/converter/allocation_counter.h"

#include <malloc.h>

#include <atomic>
#include <cstdlib>
#include <new>

namespace zcpack::testing {
namespace {

std::atomic<bool> counting{false};
std::atomic<int64_t> live{0};
std::atomic<int64_t> peak{0};
std::atomic<int64_t> total{0};

void Allocated(void* p) {
  if (!counting.load(std::memory_order_relaxed)) return;
  const auto n = static_cast<int64_t>(malloc_usable_size(p));
  total.fetch_add(n, std::memory_order_relaxed);
  const int64_t now = live.fetch_add(n, std::memory_order_relaxed) + n;
  int64_t seen = peak.load(std::memory_order_relaxed);
  while (now > seen && !peak.compare_exchange_weak(seen, now, std::memory_order_relaxed)) {
  }
}

void Freed(void* p) {
  // Blocks from before the counter started make `live` dip below zero; the
  // peak is only ever taken above it.
  if (p != nullptr && counting.load(std::memory_order_relaxed)) {
    live.fetch_sub(static_cast<int64_t>(malloc_usable_size(p)), std::memory_order_relaxed);
  }
}

}  // namespace

AllocationCounter::AllocationCounter() {
  live = 0;
  peak = 0;
  total = 0;
  counting = true;
}
AllocationCounter::~AllocationCounter() { counting = false; }
int64_t AllocationCounter::peak_bytes() const { return peak.load(); }
int64_t AllocationCounter::total_bytes() const { return total.load(); }

}  // namespace zcpack::testing

// The replaceable global allocation functions ([new.delete.single]); the
// array and nothrow forms forward to these.
void* operator new(std::size_t size) {
  void* p = std::malloc(size == 0 ? 1 : size);
  if (p == nullptr) throw std::bad_alloc();
  zcpack::testing::Allocated(p);
  return p;
}
void operator delete(void* p) noexcept {
  zcpack::testing::Freed(p);
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  zcpack::testing::Freed(p);
  std::free(p);
}

// AllocationCounter: what a stretch of code allocates through operator new,
// for tests that pin "nothing proportional to the input is allocated".
//
// Linking allocation_counter.cc into a test binary replaces that binary's
// global operator new and delete (malloc and free underneath); they count
// only while an AllocationCounter is alive. One counter at a time; the counts
// cover every thread. Memory zstd or other C code takes with malloc directly
// is not seen.
#ifndef ZCPACK_TESTS_CONVERTER_ALLOCATION_COUNTER_H_
#define ZCPACK_TESTS_CONVERTER_ALLOCATION_COUNTER_H_

#include <cstdint>

namespace zcpack::testing {

class AllocationCounter {
 public:
  AllocationCounter();
  ~AllocationCounter();
  AllocationCounter(const AllocationCounter&) = delete;
  AllocationCounter& operator=(const AllocationCounter&) = delete;

  // The most bytes held at once since construction, counting only blocks
  // allocated since then (usable sizes, as malloc_usable_size reports).
  int64_t peak_bytes() const;
  // All bytes allocated since construction.
  int64_t total_bytes() const;
};

}  // namespace zcpack::testing

#endif  // ZCPACK_TESTS_CONVERTER_ALLOCATION_COUNTER_H_

// Internal: reads ranges of a mapped file into the page cache ahead of the
// forward pass, on a background thread, in large readahead requests.
//
// Two steps per unit (a layer's byte range):
//  1. readahead(2) of the whole unit in large chunks. It submits the reads and
//     returns without waiting, so one thread keeps many requests in flight:
//     the disk sees large requests at queue depth instead of the 4 KiB faults
//     at depth one that a cold mmap would otherwise issue.
//  2. MADV_POPULATE_READ of the unit's pages in the mapping: waits for the
//     data and fills the page tables in one call, so the forward pass finds
//     every page mapped instead of taking a minor fault per 64 KiB even when
//     the file is cached. Step 1 runs ahead of step 2, so later units are
//     already being read while an earlier one is being mapped.
// Pages are never copied: they land in the page cache, which the mapping
// shares. Both steps are hints; a failure is recorded and ignored.
#ifndef ZCPACK_RUNTIME_SRC_PREFETCHER_H_
#define ZCPACK_RUNTIME_SRC_PREFETCHER_H_

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "zcpack/format/container_reader.h"

namespace zcpack::runtime::internal {

class Prefetcher {
 public:
  // `units` are the byte ranges in the order they will be needed. `fd` and
  // the mapping at `base` (the whole file) stay owned by the caller and must
  // outlive the Prefetcher. `base` may be null: then pages are only read
  // ahead, not mapped.
  Prefetcher(int fd, const uint8_t* base, std::vector<format::ByteRange> units,
             uint64_t chunk_bytes);
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;
  ~Prefetcher();  // stops the thread; requests in flight complete in the kernel

  // RequestThrough(): make sure units [0, last] are (being) read ahead.
  // Cheap and non-blocking; thread-safe.
  void RequestThrough(size_t last);

  // Units whose readahead has been issued so far (for tests and reports).
  size_t issued() const;
  // Units whose pages have been mapped so far.
  size_t populated() const;
  // The first failure of readahead(2), or 0 if none (the hint then degrades
  // to ordinary page faults).
  int first_error() const;

 private:
  void Run();

  const int fd_;
  const uint8_t* const base_;
  const std::vector<format::ByteRange> units_;
  const uint64_t chunk_bytes_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  size_t requested_ = 0;  // units [0, requested_) are wanted
  size_t issued_ = 0;     // units [0, issued_) have been submitted
  size_t populated_ = 0;  // units [0, populated_) are mapped
  bool populate_supported_ = true;
  int first_error_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace zcpack::runtime::internal

#endif  // ZCPACK_RUNTIME_SRC_PREFETCHER_H_

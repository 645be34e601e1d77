// Internal: streams the weights that a memory budget leaves out of memory.
//
// A model larger than its budget keeps part of its weights resident (locked
// or touched in the mapping, memory_plan.h's BudgetPlan) and reads the rest
// again for every token. Reading them through the mapping would let the page
// cache's LRU evict the pages the next token needs; instead each streamed
// unit (a layer's byte range, or the output head's) is read by a background
// thread, with large reads, into a ring of anonymous buffers ahead of the
// forward pass, which reads the unit's tensors from the ring. Each byte is
// read once per token, and the page cache does not grow: the reads use
// O_DIRECT where the file system allows it, else buffered pread(2) followed
// by POSIX_FADV_DONTNEED on the range just read.
//
// Order: the units are consumed cyclically (unit 0, 1, ..., n - 1, 0, ...),
// the order one forward pass after another reads them, so the reader runs
// into the next token's first units while the current token finishes. A
// consumer that asks for another unit than the next one (an evaluation
// abandoned half-way, a second session) makes the ring restart at that unit:
// correct, only slower.
//
// Thread-safety: Acquire() and Release() may be called from any thread; one
// unit is held at a time (a second Acquire() waits for the Release() of the
// first), so sessions sharing a model take turns layer by layer.
#ifndef ZCPACK_RUNTIME_SRC_WEIGHT_STREAMER_H_
#define ZCPACK_RUNTIME_SRC_WEIGHT_STREAMER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "zcpack/format/container_reader.h"
#include "zcpack/format/posix_file.h"

namespace zcpack::runtime::internal {

class WeightStreamer {
 public:
  // Create(): a streamer of `units` (byte ranges of `container`'s file, each
  // aligned to the container's alignment) through a ring of `slots` buffers
  // of the largest unit's size, allocated now (untouched until read into).
  // Reads with O_DIRECT when the file system allows it; otherwise buffered,
  // and `note` says so. ResourceExhausted when the ring cannot be mapped;
  // FailedPrecondition for a container opened from a buffer.
  static absl::StatusOr<std::unique_ptr<WeightStreamer>> Create(
      const format::Container& container, std::vector<format::ByteRange> units, int slots,
      std::string* note);
  WeightStreamer(const WeightStreamer&) = delete;
  WeightStreamer& operator=(const WeightStreamer&) = delete;
  ~WeightStreamer();  // waits for the read in flight, unmaps the ring

  // Acquire(): the bytes of unit `unit` (its range's first byte), once read;
  // blocks until they are. Valid until Release(). Aborted naming the file
  // when the read failed (a truncated file, an I/O error); the next
  // Acquire() retries.
  absl::StatusOr<const uint8_t*> Acquire(size_t unit);
  // Release(): the forward pass is done with the unit Acquire() returned;
  // its buffer may be refilled.
  void Release();

  size_t num_units() const { return units_.size(); }
  const format::ByteRange& unit(size_t index) const { return units_[index]; }
  // Bytes of the ring (slots x the largest unit).
  uint64_t ring_bytes() const { return ring_bytes_; }
  // Bytes read from the file so far.
  uint64_t bytes_read() const { return bytes_read_.load(std::memory_order_relaxed); }
  bool direct() const { return direct_; }

 private:
  WeightStreamer(std::string path, format::ScopedFd direct_fd, int fd,
                 std::vector<format::ByteRange> units, int slots, uint64_t slot_bytes,
                 uint8_t* ring, uint64_t ring_bytes);
  void Run();
  absl::Status ReadUnit(const format::ByteRange& range, uint8_t* dst);

  const std::string path_;
  const format::ScopedFd direct_fd_;  // owned when reading with O_DIRECT
  const int fd_;                      // direct_fd_, or the container's
  const bool direct_;
  const std::vector<format::ByteRange> units_;
  const uint64_t slots_;
  const uint64_t slot_bytes_;
  uint8_t* const ring_;
  const uint64_t ring_bytes_;
  std::atomic<uint64_t> bytes_read_{0};

  std::mutex mu_;
  std::condition_variable changed_;
  // Sequence numbers count units in reading order since the last restart:
  // sequence s is unit (start_ + s) % units_.size(), in slot s % slots_.
  size_t start_ = 0;
  uint64_t released_ = 0;  // sequences [0, released_) are done with
  uint64_t acquired_ = 0;  // released_, or released_ + 1 while one is held
  uint64_t filled_ = 0;    // sequences [0, filled_) are in their slots
  bool reading_ = false;   // the reader is filling sequence filled_
  uint64_t generation_ = 0;  // bumped by a restart
  absl::Status error_;       // the read of sequence filled_ failed
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace zcpack::runtime::internal

#endif  // ZCPACK_RUNTIME_SRC_WEIGHT_STREAMER_H_

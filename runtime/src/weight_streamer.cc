#include "weight_streamer.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "loaders.h"

namespace zcpack::runtime::internal {
namespace {

// Bytes per read(2) call: large enough that the kernel splits each into many
// requests in flight at once, small enough that the buffered path's
// POSIX_FADV_DONTNEED follows closely behind.
constexpr uint64_t kReadChunkBytes = uint64_t{32} << 20;

}  // namespace

absl::StatusOr<std::unique_ptr<WeightStreamer>> WeightStreamer::Create(
    const format::Container& container, std::vector<format::ByteRange> units, int slots,
    std::string* note) {
  if (container.file_descriptor() < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(container.path(), ": an in-memory container has no file to stream from"));
  }
  uint64_t slot_bytes = 0;
  for (const format::ByteRange& u : units) slot_bytes = std::max(slot_bytes, u.size);
  const long page = ::sysconf(_SC_PAGESIZE);
  slot_bytes = (slot_bytes + static_cast<uint64_t>(page) - 1) / static_cast<uint64_t>(page) *
               static_cast<uint64_t>(page);
  const uint64_t ring_bytes = slot_bytes * static_cast<uint64_t>(std::max(slots, 1));
  void* ring = ring_bytes == 0 ? nullptr
                               : ::mmap(nullptr, ring_bytes, PROT_READ | PROT_WRITE,
                                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (ring == MAP_FAILED) {
    return absl::ResourceExhaustedError(absl::StrCat(container.path(), ": cannot map a ring of ",
                                                     ring_bytes, " bytes for streamed weights: ",
                                                     std::strerror(errno)));
  }
  absl::StatusOr<format::ScopedFd> direct = OpenDirect(container);
  int fd = container.file_descriptor();
  format::ScopedFd direct_fd;
  if (direct.ok()) {
    direct_fd = std::move(*direct);
    fd = direct_fd.get();
  } else if (note != nullptr) {
    *note = absl::StrCat(direct.status().message(),
                         "; streamed weights are read with pread and dropped from the page "
                         "cache behind the reader (POSIX_FADV_DONTNEED)");
  }
  return std::unique_ptr<WeightStreamer>(new WeightStreamer(
      container.path(), std::move(direct_fd), fd, std::move(units), std::max(slots, 1), slot_bytes,
      static_cast<uint8_t*>(ring), ring_bytes));
}

WeightStreamer::WeightStreamer(std::string path, format::ScopedFd direct_fd, int fd,
                               std::vector<format::ByteRange> units, int slots,
                               uint64_t slot_bytes, uint8_t* ring, uint64_t ring_bytes)
    : path_(std::move(path)),
      direct_fd_(std::move(direct_fd)),
      fd_(fd),
      direct_(direct_fd_.valid()),
      units_(std::move(units)),
      slots_(static_cast<uint64_t>(slots)),
      slot_bytes_(slot_bytes),
      ring_(ring),
      ring_bytes_(ring_bytes) {
  thread_ = std::thread([this] { Run(); });
}

WeightStreamer::~WeightStreamer() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  changed_.notify_all();
  thread_.join();
  if (ring_ != nullptr) ::munmap(ring_, ring_bytes_);
}

absl::Status WeightStreamer::ReadUnit(const format::ByteRange& range, uint8_t* dst) {
  for (uint64_t done = 0; done < range.size;) {
    const uint64_t want = std::min(kReadChunkBytes, range.size - done);
    const off_t at = static_cast<off_t>(range.offset + done);
    const ssize_t n = ::pread(fd_, dst + done, want, at);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return absl::AbortedError(absl::StrCat(
          path_, ": truncated or unreadable while streaming weights (read of ", want,
          " bytes at offset ", range.offset + done, ": ",
          n == 0 ? std::string("end of file") : std::string(std::strerror(errno)), ")"));
    }
    if (!direct_) {
      // Keep the page cache from growing with bytes read once per token.
      ::posix_fadvise(fd_, at, n, POSIX_FADV_DONTNEED);
    }
    done += static_cast<uint64_t>(n);
    bytes_read_.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
  }
  return absl::OkStatus();
}

void WeightStreamer::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    changed_.wait(lock, [&] {
      return stop_ || (error_.ok() && !units_.empty() && filled_ < released_ + slots_);
    });
    if (stop_) return;
    const uint64_t sequence = filled_;
    const uint64_t generation = generation_;
    const format::ByteRange range = units_[(start_ + sequence) % units_.size()];
    uint8_t* const dst = ring_ + (sequence % slots_) * slot_bytes_;
    reading_ = true;
    lock.unlock();
    absl::Status read = ReadUnit(range, dst);
    lock.lock();
    reading_ = false;
    if (generation == generation_) {
      if (read.ok()) {
        ++filled_;
      } else {
        error_ = std::move(read);
      }
    }
    changed_.notify_all();
  }
}

absl::StatusOr<const uint8_t*> WeightStreamer::Acquire(size_t unit) {
  std::unique_lock<std::mutex> lock(mu_);
  changed_.wait(lock, [&] { return acquired_ == released_; });  // another holder first
  if ((start_ + acquired_) % units_.size() != unit || !error_.ok()) {
    // Out of order (or after a failed read): restart the ring at `unit`
    // once the read in flight, whose slot may be any, has landed.
    changed_.wait(lock, [&] { return !reading_; });
    ++generation_;
    start_ = unit;
    released_ = acquired_ = filled_ = 0;
    error_ = absl::OkStatus();
    changed_.notify_all();
  }
  changed_.wait(lock, [&] { return filled_ > acquired_ || !error_.ok(); });
  if (filled_ <= acquired_) return error_;
  const uint8_t* bytes = ring_ + (acquired_ % slots_) * slot_bytes_;
  ++acquired_;
  return bytes;
}

void WeightStreamer::Release() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = acquired_;
  }
  changed_.notify_all();
}

}  // namespace zcpack::runtime::internal

#include "prefetcher.h"

#include <fcntl.h>
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>

namespace zcpack::runtime::internal {
namespace {

#ifdef MADV_POPULATE_READ
constexpr int kMadvPopulateRead = MADV_POPULATE_READ;
#else
constexpr int kMadvPopulateRead = 22;  // Linux 5.14
#endif

}  // namespace

Prefetcher::Prefetcher(int fd, const uint8_t* base, std::vector<format::ByteRange> units,
                       uint64_t chunk_bytes)
    : fd_(fd),
      base_(base),
      units_(std::move(units)),
      chunk_bytes_(std::max<uint64_t>(chunk_bytes, 4096)) {
  thread_ = std::thread([this] { Run(); });
}

Prefetcher::~Prefetcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void Prefetcher::RequestThrough(size_t last) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    const size_t wanted = std::min(last + 1, units_.size());
    if (wanted <= requested_) return;
    requested_ = wanted;
  }
  wake_.notify_all();
}

size_t Prefetcher::issued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return issued_;
}

size_t Prefetcher::populated() const {
  std::lock_guard<std::mutex> lock(mu_);
  return populated_;
}

int Prefetcher::first_error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return first_error_;
}

void Prefetcher::Run() {
  for (;;) {
    size_t unit;
    bool populate;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return stop_ || populated_ < requested_; });
      if (stop_) return;
      // Read ahead every requested unit before mapping the next one.
      populate = issued_ == requested_;
      unit = populate ? populated_ : issued_;
    }
    const format::ByteRange range = units_[unit];
    int error = 0;
    if (!populate) {
      for (uint64_t off = 0; off < range.size && error == 0; off += chunk_bytes_) {
        const uint64_t len = std::min(chunk_bytes_, range.size - off);
        if (::readahead(fd_, static_cast<off64_t>(range.offset + off), len) != 0) error = errno;
      }
    } else if (base_ != nullptr && populate_supported_ && range.size > 0) {
      // Chunked, so that a stop request is seen between chunks.
      for (uint64_t off = 0; off < range.size && error == 0; off += chunk_bytes_) {
        const uint64_t len = std::min(chunk_bytes_, range.size - off);
        if (::madvise(const_cast<uint8_t*>(base_ + range.offset + off), len, kMadvPopulateRead) != 0) {
          error = errno;
          if (error == EINVAL) populate_supported_ = false;  // kernel older than 5.14
        }
        std::lock_guard<std::mutex> lock(mu_);
        if (stop_) return;
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (error != 0 && first_error_ == 0) first_error_ = error;
    if (populate) {
      ++populated_;
    } else {
      ++issued_;
    }
  }
}

}  // namespace zcpack::runtime::internal

#include "prefetcher.h"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>

namespace zcpack::runtime::internal {

Prefetcher::Prefetcher(int fd, std::vector<format::ByteRange> units, uint64_t chunk_bytes)
    : fd_(fd), units_(std::move(units)), chunk_bytes_(std::max<uint64_t>(chunk_bytes, 4096)) {
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

int Prefetcher::first_error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return first_error_;
}

void Prefetcher::Run() {
  for (;;) {
    size_t unit;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return stop_ || issued_ < requested_; });
      if (stop_) return;
      unit = issued_;
    }
    const format::ByteRange range = units_[unit];
    int error = 0;
    for (uint64_t off = 0; off < range.size && error == 0; off += chunk_bytes_) {
      const uint64_t len = std::min(chunk_bytes_, range.size - off);
      if (::readahead(fd_, static_cast<off64_t>(range.offset + off), len) != 0) error = errno;
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (error != 0 && first_error_ == 0) first_error_ = error;
    ++issued_;
  }
}

}  // namespace zcpack::runtime::internal

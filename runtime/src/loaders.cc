#include "loaders.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "zcpack/format/posix_file.h"
#include "zcpack/status_macros.h"

namespace zcpack::runtime::internal {
namespace {

constexpr uint64_t kBufferAlignment = 4096;

uint64_t RoundUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

// The bytes Allocate() asks for: std::aligned_alloc() wants a multiple of the
// alignment, and an empty tensor still gets a buffer.
uint64_t AllocationBytes(uint64_t size, uint64_t alignment) {
  return RoundUp(std::max<uint64_t>(size, 1), alignment);
}

absl::StatusOr<TensorBuffer> Allocate(uint64_t size, uint64_t alignment, const std::string& path) {
  TensorBuffer b;
  b.memory = static_cast<uint8_t*>(std::aligned_alloc(alignment, AllocationBytes(size, alignment)));
  if (b.memory == nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat(path, ": cannot allocate ", size, " bytes"));
  }
  return b;
}

// The descriptor the container opened: the file it checked and mapped, even
// if the path has since been renamed over or unlinked.
absl::StatusOr<int> OpenFileDescriptor(const format::Container& c) {
  if (c.file_descriptor() < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(c.path(), ": an in-memory container has no file to read"));
  }
  return c.file_descriptor();
}

}  // namespace

TensorBuffer& TensorBuffer::operator=(TensorBuffer&& o) noexcept {
  if (this != &o) {
    std::free(memory);
    memory = o.memory;
    data = o.data;
    o.memory = nullptr;
  }
  return *this;
}

absl::StatusOr<std::vector<TensorBuffer>> LoadClassic(const format::Container& c) {
  const std::string& path = c.path();
  ZCPACK_ASSIGN_OR_RETURN(const int fd, OpenFileDescriptor(c));
  ZCPACK_ASSIGN_OR_RETURN(TensorBuffer whole, Allocate(c.file_size(), kBufferAlignment, path));
  // Sequential reads of the whole file, as a naive loader does (pread, so
  // that the descriptor's offset, shared with the container, stays put).
  uint64_t done = 0;
  while (done < c.file_size()) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(c.file_size() - done, 64 << 20));
    const ssize_t n = ::pread(fd, whole.memory + done, want, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return format::ErrnoError(errno, path, "read");
    if (n == 0) return absl::DataLossError(absl::StrCat(path, ": file shrank while reading"));
    done += static_cast<uint64_t>(n);
  }
  std::vector<TensorBuffer> out;
  for (size_t i = 0; i < c.num_tensors(); ++i) {
    const auto& t = c.tensor(i);
    ZCPACK_ASSIGN_OR_RETURN(TensorBuffer b, Allocate(t.nbytes(), kBufferAlignment, path));
    std::memcpy(b.memory, whole.memory + t.offset(), t.nbytes());
    b.data = {b.memory, static_cast<size_t>(t.nbytes())};
    out.push_back(std::move(b));
  }
  return out;
}

LoadFootprint ClassicFootprint(const format::Container& c) {
  LoadFootprint f = PreadFootprint(c, /*direct=*/false);
  f.peak_bytes = f.kept_bytes + AllocationBytes(c.file_size(), kBufferAlignment);
  return f;
}

LoadFootprint PreadFootprint(const format::Container& c, bool direct) {
  LoadFootprint f;
  for (size_t i = 0; i < c.num_tensors(); ++i) {
    f.kept_bytes += direct ? AllocationBytes(c.TensorExtent(i).size, c.alignment())
                           : AllocationBytes(c.tensor(i).nbytes(), kBufferAlignment);
  }
  f.peak_bytes = f.kept_bytes;
  return f;
}

absl::StatusOr<format::ScopedFd> OpenDirect(const format::Container& c) {
  ZCPACK_ASSIGN_OR_RETURN(const int fd, OpenFileDescriptor(c));
  // O_DIRECT is a property of an open file description, and the
  // container's is shared with its mapping and the prefetcher: open the
  // same file again through /proc/self/fd, which names the open inode, not
  // the path (a file renamed over the path since Open() is not read).
  const std::string self = absl::StrCat("/proc/self/fd/", fd);
  format::ScopedFd direct_fd(::open(self.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT));
  if (!direct_fd.valid()) {
    if (errno == EINVAL) {
      return absl::UnimplementedError(absl::StrCat(c.path(), ": the file system refuses O_DIRECT"));
    }
    return absl::UnimplementedError(absl::StrCat(c.path(), ": cannot reopen the open file with O_DIRECT (",
                                                 self, ": ", std::strerror(errno), ")"));
  }
  return direct_fd;
}

absl::StatusOr<std::vector<TensorBuffer>> LoadPread(const format::Container& c, bool direct) {
  const std::string& path = c.path();
  ZCPACK_ASSIGN_OR_RETURN(int fd, OpenFileDescriptor(c));
  format::ScopedFd direct_fd;
  if (direct) {
    ZCPACK_ASSIGN_OR_RETURN(direct_fd, OpenDirect(c));
    fd = direct_fd.get();
  }
  std::vector<TensorBuffer> out;
  for (size_t i = 0; i < c.num_tensors(); ++i) {
    const auto& t = c.tensor(i);
    // O_DIRECT needs aligned offsets, sizes and buffers: read the tensor's
    // whole aligned extent (offsets and extents are multiples of the
    // container's alignment, itself a multiple of 4 KiB).
    const uint64_t size = direct ? c.TensorExtent(i).size : t.nbytes();
    ZCPACK_ASSIGN_OR_RETURN(TensorBuffer b,
                            Allocate(size, direct ? c.alignment() : kBufferAlignment, path));
    absl::Status s = format::ReadAt(fd, t.offset(), std::span<uint8_t>(b.memory, size), path);
    if (!s.ok()) {
      if (direct && absl::StrContains(s.message(), "Invalid argument")) {
        return absl::UnimplementedError(absl::StrCat(path, ": O_DIRECT reads refused"));
      }
      return s;
    }
    b.data = {b.memory, static_cast<size_t>(t.nbytes())};
    out.push_back(std::move(b));
  }
  return out;
}

}  // namespace zcpack::runtime::internal

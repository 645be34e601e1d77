// Internal: the copying loaders the benchmark compares against zero-copy
// mapping. Each returns one malloc'd buffer per tensor (in file order).
// They read through the descriptor the container opened (never the path
// again), so they read the file that was checked, even if another file has
// been renamed over its path since. FailedPrecondition for a container opened
// from a buffer.
#ifndef ZCPACK_RUNTIME_SRC_LOADERS_H_
#define ZCPACK_RUNTIME_SRC_LOADERS_H_

#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "zcpack/format/container_reader.h"
#include "zcpack/format/posix_file.h"

namespace zcpack::runtime::internal {

// A tensor's bytes in a buffer from std::aligned_alloc (freed with free()).
struct TensorBuffer {
  uint8_t* memory = nullptr;
  std::span<const uint8_t> data;
  TensorBuffer() = default;
  TensorBuffer(TensorBuffer&& o) noexcept : memory(o.memory), data(o.data) { o.memory = nullptr; }
  TensorBuffer& operator=(TensorBuffer&& o) noexcept;
  ~TensorBuffer() { std::free(memory); }
  uint8_t* release() {
    uint8_t* m = memory;
    memory = nullptr;
    return m;
  }
};

// LoadClassic(): read() the whole file into one buffer, copy each tensor into
// its own allocation, free the file buffer. Peak memory: file + tensors.
absl::StatusOr<std::vector<TensorBuffer>> LoadClassic(const format::Container& container);

// LoadPread(): pread each tensor into its own buffer. With `direct`, the file
// is opened with O_DIRECT and each tensor's aligned extent is read into a
// buffer aligned to the container's alignment, through a second open file
// description of the same file (/proc/self/fd); Unimplemented when the file
// system refuses O_DIRECT or the file cannot be reopened that way.
absl::StatusOr<std::vector<TensorBuffer>> LoadPread(const format::Container& container,
                                                    bool direct);

// OpenDirect(): the container's file opened again with O_DIRECT, through
// /proc/self/fd (the open inode, not the path). Unimplemented when the file
// system refuses O_DIRECT or the file cannot be reopened that way;
// FailedPrecondition for a container opened from a buffer.
absl::StatusOr<format::ScopedFd> OpenDirect(const format::Container& container);

// LoadFootprint: the bytes a copying loader allocates, as the functions
// above allocate them (each buffer rounded up to its alignment).
struct LoadFootprint {
  uint64_t peak_bytes = 0;  // at the most, inside the load
  uint64_t kept_bytes = 0;  // in the buffers returned
};
// ClassicFootprint(): LoadClassic()'s: the whole-file buffer plus every
// tensor's copy at the peak (just before the file buffer is freed).
LoadFootprint ClassicFootprint(const format::Container& container);
// PreadFootprint(): LoadPread()'s: each tensor's buffer (its aligned extent
// with `direct`).
LoadFootprint PreadFootprint(const format::Container& container, bool direct);

}  // namespace zcpack::runtime::internal

#endif  // ZCPACK_RUNTIME_SRC_LOADERS_H_

#include "byte_source.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "zcpack/format/posix_file.h"
#include "zcpack/status_macros.h"

namespace zcpack::validator::internal {
namespace {

class FileSource final : public ByteSource {
 public:
  FileSource(std::string path, uint64_t size, format::ScopedFd fd, DataAccess access,
             const uint8_t* base)
      : ByteSource(std::move(path), size), fd_(std::move(fd)), access_(access), base_(base) {}

  ~FileSource() override {
    if (base_ != nullptr) ::munmap(const_cast<uint8_t*>(base_), size());
  }

  absl::Status Read(uint64_t offset, std::span<uint8_t> dst) const override {
    return format::ReadAt(fd_.get(), offset, dst, name());
  }

  absl::Status Scan(uint64_t offset, uint64_t length, size_t chunk_bytes,
                    ScratchBuffer& scratch,
                    absl::FunctionRef<void(std::span<const uint8_t>)> consume) const override {
    chunk_bytes = std::max<size_t>(chunk_bytes, 4096);
    switch (access_) {
      case DataAccess::kPread: {
        const std::span<uint8_t> buffer =
            scratch.Get(static_cast<size_t>(std::min<uint64_t>(chunk_bytes, length)));
        for (uint64_t done = 0; done < length;) {
          const size_t n = static_cast<size_t>(std::min<uint64_t>(buffer.size(), length - done));
          ZCPACK_RETURN_IF_ERROR(Read(offset + done, buffer.first(n)));
          consume(buffer.first(n));
          done += n;
        }
        return absl::OkStatus();
      }
      case DataAccess::kMmap:
        if (length > 0) consume(std::span<const uint8_t>(base_ + offset, static_cast<size_t>(length)));
        return absl::OkStatus();
      case DataAccess::kMmapPopulate: {
        const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
        for (uint64_t done = 0; done < length;) {
          const size_t n = static_cast<size_t>(std::min<uint64_t>(chunk_bytes, length - done));
          const uint8_t* piece = base_ + offset + done;
          const uintptr_t begin = reinterpret_cast<uintptr_t>(piece) & ~(page - 1);
          const uintptr_t end = reinterpret_cast<uintptr_t>(piece) + n;
          void* range = reinterpret_cast<void*>(begin);
          // Hints: where the kernel refuses them, pages fault in as usual.
          (void)::madvise(range, end - begin, MADV_POPULATE_READ);
          consume(std::span<const uint8_t>(piece, n));
          // Drops this mapping's page-table entries (not the page cache), so
          // that the resident set stays bounded by the chunk size.
          (void)::madvise(range, end - begin, MADV_DONTNEED);
          done += n;
        }
        return absl::OkStatus();
      }
    }
    return absl::InternalError("unknown data access mode");
  }

  void AdviseRandom() const override { (void)::posix_fadvise(fd_.get(), 0, 0, POSIX_FADV_RANDOM); }

  void AdviseSequential() const override {
    (void)::posix_fadvise(fd_.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
    if (base_ != nullptr) (void)::madvise(const_cast<uint8_t*>(base_), size(), MADV_SEQUENTIAL);
  }

 private:
  format::ScopedFd fd_;
  DataAccess access_;
  const uint8_t* base_;  // the mapping (mapping modes only), owned
};

class BufferSource final : public ByteSource {
 public:
  BufferSource(std::span<const uint8_t> bytes, std::string name)
      : ByteSource(std::move(name), bytes.size()), bytes_(bytes) {}

  absl::Status Read(uint64_t offset, std::span<uint8_t> dst) const override {
    if (!dst.empty()) std::memcpy(dst.data(), bytes_.data() + offset, dst.size());
    return absl::OkStatus();
  }

  absl::Status Scan(uint64_t offset, uint64_t length, size_t /*chunk_bytes*/,
                    ScratchBuffer& /*scratch*/,
                    absl::FunctionRef<void(std::span<const uint8_t>)> consume) const override {
    if (length > 0) consume(bytes_.subspan(static_cast<size_t>(offset), static_cast<size_t>(length)));
    return absl::OkStatus();
  }

 private:
  std::span<const uint8_t> bytes_;
};

}  // namespace

void ScratchBuffer::Free::operator()(uint8_t* p) const { std::free(p); }

std::span<uint8_t> ScratchBuffer::Get(size_t size) {
  if (size > capacity_ || data_ == nullptr) {
    constexpr size_t kPage = 4096;
    const size_t capacity = std::max<size_t>(kPage, (size + kPage - 1) / kPage * kPage);
    data_.reset(static_cast<uint8_t*>(std::aligned_alloc(kPage, capacity)));
    if (data_ == nullptr) {
      std::fprintf(stderr, "zcpack validator: out of memory for a %zu-byte buffer\n", capacity);
      std::abort();
    }
    capacity_ = capacity;
  }
  return {data_.get(), size};
}

absl::StatusOr<std::unique_ptr<ByteSource>> ByteSource::OpenFile(const std::string& path,
                                                                 DataAccess access) {
  ZCPACK_ASSIGN_OR_RETURN(format::ScopedFd fd, format::OpenReadOnly(path));
  ZCPACK_ASSIGN_OR_RETURN(const uint64_t size, format::FileSize(fd.get(), path));
  const uint8_t* base = nullptr;
  if (access != DataAccess::kPread && size > 0) {
    void* mapped = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd.get(), 0);
    if (mapped == MAP_FAILED) return format::ErrnoError(errno, path, "mmap");
    base = static_cast<const uint8_t*>(mapped);
  }
  return std::unique_ptr<ByteSource>(new FileSource(path, size, std::move(fd), access, base));
}

std::unique_ptr<ByteSource> ByteSource::FromBuffer(std::span<const uint8_t> bytes, std::string name) {
  return std::unique_ptr<ByteSource>(new BufferSource(bytes, std::move(name)));
}

}  // namespace zcpack::validator::internal

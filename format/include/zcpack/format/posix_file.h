// Small POSIX file helpers with absl::Status errors that carry the path and
// the errno text. Shared by every module that does file I/O.
#ifndef ZCPACK_FORMAT_POSIX_FILE_H_
#define ZCPACK_FORMAT_POSIX_FILE_H_

#include <cstdint>
#include <span>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace zcpack::format {

// ErrnoError(): a status whose code follows errno (NotFound for ENOENT and
// ENOTDIR, PermissionDenied for EACCES/EPERM/EROFS, ResourceExhausted for
// ENOSPC/EFBIG/EDQUOT/ENOMEM, AlreadyExists for EEXIST, Internal for the
// rest; never a code that means "bad input") and whose message reads
// "<path>: <what>: <strerror>".
absl::Status ErrnoError(int error_number, absl::string_view path, absl::string_view what);

// ReadAt(): reads exactly dst.size() bytes at `offset`, retrying on EINTR and
// short reads. DataLoss if the file ends first.
absl::Status ReadAt(int fd, uint64_t offset, std::span<uint8_t> dst, absl::string_view path);

// WriteAt(): writes all of `src` at `offset`, retrying on EINTR and short writes.
absl::Status WriteAt(int fd, uint64_t offset, std::span<const uint8_t> src, absl::string_view path);

// FileSize(): the size of a regular file. FailedPrecondition if `fd` is not a
// regular file.
absl::StatusOr<uint64_t> FileSize(int fd, absl::string_view path);

// ScopedFd: owns a file descriptor; closes it on destruction. Move-only.
class ScopedFd {
 public:
  ScopedFd() = default;
  explicit ScopedFd(int fd) : fd_(fd) {}
  ScopedFd(ScopedFd&& other) noexcept : fd_(other.release()) {}
  ScopedFd& operator=(ScopedFd&& other) noexcept;
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  ~ScopedFd();

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// OpenReadOnly(): opens a regular file with O_RDONLY | O_CLOEXEC. Never
// blocks in open(2): a FIFO, socket, device or directory is refused with
// FailedPrecondition ("<path>: not a regular file (a FIFO); ...") before
// anything waits on it. Errors from the OS carry the path and errno text.
absl::StatusOr<ScopedFd> OpenReadOnly(const std::string& path);

}  // namespace zcpack::format

#endif  // ZCPACK_FORMAT_POSIX_FILE_H_

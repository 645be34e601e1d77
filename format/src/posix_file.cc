#include "zcpack/format/posix_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "zcpack/format/status_context.h"

namespace zcpack::format {

namespace {

// The status code of an OS error. Kept apart from the codes that mean "the
// input is unsound" (InvalidArgument, DataLoss, FailedPrecondition, ...), so
// that callers and exit codes can tell a bad file from a failed system call.
absl::StatusCode CodeForErrno(int error_number) {
  switch (error_number) {
    case ENOENT:
    case ENOTDIR:
      return absl::StatusCode::kNotFound;
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::StatusCode::kPermissionDenied;
    case ENOSPC:
    case EFBIG:
    case EDQUOT:
    case ENOMEM:
    case EMFILE:
    case ENFILE:
      return absl::StatusCode::kResourceExhausted;
    case EEXIST:
      return absl::StatusCode::kAlreadyExists;
    case EINTR:
    case EAGAIN:
    case EBUSY:
      return absl::StatusCode::kUnavailable;
    default:
      return absl::StatusCode::kInternal;
  }
}

// What a non-regular file is, for messages.
absl::string_view FileKind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "not a regular file";
}

absl::Status NotRegularFileError(mode_t mode, absl::string_view path) {
  return absl::FailedPreconditionError(
      absl::StrCat(path, ": not a regular file (", FileKind(mode), "); zcpack reads regular files only"));
}

}  // namespace

absl::Status ErrnoError(int error_number, absl::string_view path, absl::string_view what) {
  return WithFile(absl::Status(CodeForErrno(error_number),
                               absl::StrCat(path, ": ", what, ": ", std::strerror(error_number))),
                  path);
}

absl::Status ReadAt(int fd, uint64_t offset, std::span<uint8_t> dst, absl::string_view path) {
  size_t done = 0;
  while (done < dst.size()) {
    const ssize_t n = ::pread(fd, dst.data() + done, dst.size() - done,
                              static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, path, absl::StrCat("read of ", dst.size(), " bytes at ", offset));
    }
    if (n == 0) {
      return absl::DataLossError(absl::StrCat(path, ": file ends at ", offset + done,
                                              " while reading ", dst.size(), " bytes at ",
                                              offset));
    }
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status WriteAt(int fd, uint64_t offset, std::span<const uint8_t> src, absl::string_view path) {
  size_t done = 0;
  while (done < src.size()) {
    const ssize_t n = ::pwrite(fd, src.data() + done, src.size() - done,
                               static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, path, absl::StrCat("write of ", src.size(), " bytes at ", offset));
    }
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> FileSize(int fd, absl::string_view path) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoError(errno, path, "fstat");
  if (!S_ISREG(st.st_mode)) return NotRegularFileError(st.st_mode, path);
  return static_cast<uint64_t>(st.st_size);
}

ScopedFd& ScopedFd::operator=(ScopedFd&& other) noexcept {
  if (this != &other) reset(other.release());
  return *this;
}

ScopedFd::~ScopedFd() { reset(); }

void ScopedFd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

absl::StatusOr<ScopedFd> OpenReadOnly(const std::string& path) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer
  // forever, before any check could run. It is cleared once the file is
  // known to be regular (where it means nothing to reads anyway).
  ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (!fd.valid()) return ErrnoError(errno, path, "open");
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoError(errno, path, "fstat");
  if (!S_ISREG(st.st_mode)) return NotRegularFileError(st.st_mode, path);
  const int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK) != 0) {
    return ErrnoError(errno, path, "fcntl");
  }
  return fd;
}

}  // namespace zcpack::format

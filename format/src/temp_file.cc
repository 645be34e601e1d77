#include "zcpack/format/temp_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <mutex>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "zcpack/format/posix_file.h"
#include "zcpack/format/utf8.h"

namespace zcpack::format {
namespace {

constexpr absl::string_view kTempMarker = ".zcpack-tmp-";
constexpr size_t kRandomChars = 6;  // mkostemp's XXXXXX

absl::string_view BaseName(absl::string_view path) {
  const size_t slash = path.rfind('/');
  return slash == absl::string_view::npos ? path : path.substr(slash + 1);
}

// The longest file name the folder takes; NAME_MAX when it does not say.
size_t NameMax(const std::string& dir) {
  const long name_max = ::pathconf(dir.c_str(), _PC_NAME_MAX);
  return name_max > 0 ? static_cast<size_t>(name_max) : size_t{NAME_MAX};
}

// `name` cut to at most `max_bytes`, never inside a UTF-8 sequence (a
// continuation byte is never the first one kept out).
absl::string_view CutName(absl::string_view name, size_t max_bytes) {
  if (name.size() <= max_bytes) return name;
  size_t cut = max_bytes;
  while (cut > 0 && (static_cast<uint8_t>(name[cut]) & 0xc0) == 0x80) --cut;
  return name.substr(0, cut);
}

// The temporary files of this process that are neither installed nor
// removed, for AbandonTempFiles(). Created once and never destroyed, so that
// a thread ending the process on a signal can use it even while static
// objects are being destroyed by exit().
struct LiveTempFiles {
  std::mutex mu;
  std::set<std::string> paths;
};

LiveTempFiles& Live() {
  static LiveTempFiles* const live = new LiveTempFiles;
  return *live;
}

}  // namespace

std::string DirName(absl::string_view path) {
  const size_t slash = path.rfind('/');
  if (slash == absl::string_view::npos) return ".";
  if (slash == 0) return "/";
  return std::string(path.substr(0, slash));
}

struct TempFile::State {
  std::string destination;
  std::string path;
  ScopedFd fd;
  bool installed = false;
  std::vector<std::string> removed_stale;

  ~State() {
    // Unlink while the lock is still held, so that no cleaner sees the file
    // unlocked with this process alive.
    if (!path.empty()) {
      LiveTempFiles& live = Live();
      const std::lock_guard<std::mutex> lock(live.mu);
      if (!installed) ::unlink(path.c_str());
      live.paths.erase(path);
    }
    fd.reset();
  }
};

TempFile::TempFile(std::unique_ptr<State> state) : state_(std::move(state)) {}
TempFile::TempFile(TempFile&&) noexcept = default;
TempFile& TempFile::operator=(TempFile&&) noexcept = default;
TempFile::~TempFile() = default;

int TempFile::fd() const { return state_->fd.get(); }
const std::string& TempFile::path() const { return state_->path; }
const std::string& TempFile::destination() const { return state_->destination; }
const std::vector<std::string>& TempFile::removed_stale() const { return state_->removed_stale; }

absl::StatusOr<TempFile> TempFile::Create(const std::string& destination) {
  const std::string dir = DirName(destination);
  const std::string suffix = absl::StrCat(kTempMarker, ::getpid(), "-", std::string(kRandomChars, 'X'));
  const size_t name_max = NameMax(dir);
  const size_t room = name_max > 1 + suffix.size() ? name_max - 1 - suffix.size() : 0;
  std::string path =
      absl::StrCat(dir, "/.", CutName(BaseName(destination), room), suffix);
  std::vector<std::string> removed_stale;
  // A folder that cannot be listed is the writer's to report (mkostemp).
  if (auto removed = RemoveStaleTempFiles(dir); removed.ok()) {
    for (const std::string& name : *removed) removed_stale.push_back(absl::StrCat(dir, "/", name));
  }
  auto state = std::make_unique<State>();
  state->destination = destination;
  state->removed_stale = std::move(removed_stale);
  {
    // Created and listed under one lock: AbandonTempFiles() sees either
    // both or neither.
    LiveTempFiles& live = Live();
    const std::lock_guard<std::mutex> lock(live.mu);
    const int fd = ::mkostemp(path.data(), O_CLOEXEC);
    if (fd < 0) return ErrnoError(errno, destination, "cannot create a temporary file beside it");
    live.paths.insert(path);
    state->fd.reset(fd);
    state->path = std::move(path);
  }
  const int raw_fd = state->fd.get();
  // Held until the file is installed or removed: a temporary file that can
  // be locked has no writer (RemoveStaleTempFiles()). A cleaner may hold the
  // lock for a moment (it then sees this process alive and lets go), so wait.
  while (::flock(raw_fd, LOCK_EX) != 0) {
    if (errno != EINTR) return ErrnoError(errno, state->path, "flock");
  }
  // mkostemp creates 0600; give the file the usual permissions under umask.
  const mode_t mask = ::umask(0);
  ::umask(mask);
  (void)::fchmod(raw_fd, 0666 & ~mask);
  return TempFile(std::move(state));
}

absl::Status TempFile::Install(bool overwrite) {
  State& s = *state_;
  if (s.installed || !s.fd.valid()) {
    return absl::FailedPreconditionError(absl::StrCat(s.destination, ": already installed"));
  }
  if (::fsync(s.fd.get()) != 0) return ErrnoError(errno, s.path, "fsync");
  // The descriptor (and its lock) stays open until the file has its final
  // name. Under the registry's lock: after AbandonTempFiles() nothing is
  // installed.
  {
    LiveTempFiles& live = Live();
    const std::lock_guard<std::mutex> lock(live.mu);
    if (!overwrite) {
      // link() fails if the destination appeared meanwhile; rename() would replace it.
      if (::link(s.path.c_str(), s.destination.c_str()) != 0) {
        return ErrnoError(errno, s.destination, "cannot create");
      }
      ::unlink(s.path.c_str());
    } else if (::rename(s.path.c_str(), s.destination.c_str()) != 0) {
      return ErrnoError(errno, s.destination, "cannot rename the temporary file onto it");
    }
    s.installed = true;
    live.paths.erase(s.path);
  }
  s.fd.reset();
  const std::string dir = DirName(s.destination);
  if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
  return absl::OkStatus();
}

bool IsTempFileName(absl::string_view name, int* pid) {
  if (!absl::StartsWith(name, ".")) return false;
  const size_t marker = name.rfind(kTempMarker);
  if (marker == absl::string_view::npos || marker == 0) return false;
  absl::string_view rest = name.substr(marker + kTempMarker.size());  // <pid>-XXXXXX
  const size_t dash = rest.find('-');
  if (dash == absl::string_view::npos || rest.size() - dash - 1 != kRandomChars) return false;
  const absl::string_view digits = rest.substr(0, dash);
  int value = 0;
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), absl::ascii_isdigit) ||
      !absl::SimpleAtoi(digits, &value) || value <= 0) {
    return false;
  }
  if (pid != nullptr) *pid = value;
  return true;
}

absl::StatusOr<std::vector<std::string>> RemoveStaleTempFiles(const std::string& dir) {
  std::vector<std::string> removed;
  DIR* listing = ::opendir(dir.c_str());
  if (listing == nullptr) {
    if (errno == ENOENT) return removed;
    return ErrnoError(errno, dir, "cannot list the folder");
  }
  const int self = static_cast<int>(::getpid());
  while (const dirent* entry = ::readdir(listing)) {
    const std::string name = entry->d_name;
    int pid = 0;
    if (!IsTempFileName(name, &pid) || pid == self) continue;
    const std::string path = absl::StrCat(dir, "/", name);
    // O_NONBLOCK: a FIFO under such a name must not block us.
    ScopedFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
    if (!fd.valid()) continue;
    struct stat st;
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    // A writer holds the lock for as long as it writes; a live process that
    // has not taken it yet (it locks right after creating) is spared by the
    // pid check.
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) continue;
    if (::kill(pid, 0) == 0 || errno != ESRCH) continue;
    if (::unlink(path.c_str()) == 0) removed.push_back(name);
  }
  ::closedir(listing);
  std::sort(removed.begin(), removed.end());
  return removed;
}

std::string StaleTempFileNote(absl::string_view path) {
  return EscapeInvalidUtf8(
      absl::StrCat("removed ", path, ", a temporary file left by a writer that is gone"));
}

int AbandonTempFiles() {
  LiveTempFiles& live = Live();
  // Never unlocked: the process ends, and no TempFile may be created,
  // installed or removed meanwhile.
  live.mu.lock();
  int removed = 0;
  for (const std::string& path : live.paths) {
    if (::unlink(path.c_str()) == 0) ++removed;
  }
  live.paths.clear();
  return removed;
}

}  // namespace zcpack::format

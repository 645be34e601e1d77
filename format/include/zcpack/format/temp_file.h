// TempFile: the one way zcpack writes an output file atomically: into a
// temporary file beside the destination, installed by a rename (or a link,
// which never replaces an existing file) once it is complete and synced.
//
// Temporary names are
//
//   .<stem>.zcpack-tmp-<pid>-XXXXXX      (in the destination's folder)
//
// where <stem> is the destination's base name, cut (at a UTF-8 boundary) so
// that the whole name fits the folder's NAME_MAX: any destination name the
// file system accepts can be written. <pid> is the writing process and XXXXXX
// is mkostemp's, so concurrent writers, in one process or several, never
// share a temporary file.
//
// While a TempFile lives it holds an exclusive flock(2) on its file. A
// temporary file whose lock can be taken has no writer any more (it was left
// by a process killed with SIGKILL, or by a crash); RemoveStaleTempFiles()
// removes such files and only those, and Create() runs it on the
// destination's folder first, so every writer cleans up after the ones
// before it.
//
// A process that is being ended by a signal it can catch (SIGINT, SIGTERM)
// removes its own temporary files instead of leaving them to the next
// writer: every TempFile of the process is listed in one process-wide
// registry until it is installed or destroyed, and AbandonTempFiles()
// removes the files listed (tools/cli/interrupt.cc calls it). Together the
// two are the one cleanup mechanism: the registry for an ending this process
// sees, the sweep for one it cannot (SIGKILL, a crash, a power cut).
//
// Thread-safety: a TempFile is not thread-safe by itself, but fd() may be
// written at different offsets from several threads (pwrite).
#ifndef ZCPACK_FORMAT_TEMP_FILE_H_
#define ZCPACK_FORMAT_TEMP_FILE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace zcpack::format {

class TempFile {
 public:
  // Create(): removes the stale temporary files of the destination's folder
  // (RemoveStaleTempFiles(); removed_stale() lists them), then creates and
  // locks a new temporary file beside `destination`, readable and writable
  // by the owner (permissions follow the umask once installed), and lists it
  // in the process's registry (AbandonTempFiles()). Errors: an I/O status
  // naming `destination` ("cannot create a temporary file beside it") with
  // errno. A folder that cannot be swept is not an error.
  static absl::StatusOr<TempFile> Create(const std::string& destination);

  TempFile(TempFile&&) noexcept;
  TempFile& operator=(TempFile&&) noexcept;
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  // Closes the file and, unless Install() succeeded, removes it.
  ~TempFile();

  // The open descriptor (valid until Install() or destruction).
  int fd() const;
  const std::string& path() const;
  const std::string& destination() const;
  // The stale temporary files Create() removed from the folder first, as
  // paths (the folder, a slash, the name).
  const std::vector<std::string>& removed_stale() const;

  // Install(): fsyncs the file, closes it and moves it onto the destination:
  // rename(2) when `overwrite`, else link(2) and unlink, which fails with
  // AlreadyExists when the destination appeared meanwhile. Then fsyncs the
  // folder (best effort). On failure the temporary file is removed when the
  // TempFile is destroyed and the destination is untouched.
  absl::Status Install(bool overwrite);

 private:
  struct State;
  explicit TempFile(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// IsTempFileName(): whether `name` (a base name) has the form TempFile gives
// temporary files; `pid` receives the writer's process id when it does.
bool IsTempFileName(absl::string_view name, int* pid = nullptr);

// RemoveStaleTempFiles(): removes from folder `dir` every regular file whose
// name IsTempFileName() and whose writer is gone: its flock can be taken and
// its process id no longer exists. Returns the names removed. Files it
// cannot open, lock or remove are left alone (never an error); an error only
// when `dir` cannot be listed, and not even then when it does not exist
// (nothing to clean).
absl::StatusOr<std::vector<std::string>> RemoveStaleTempFiles(const std::string& dir);

// StaleTempFileNote(): the line a writer reports for each path in
// TempFile::removed_stale() ("removed PATH, a temporary file left by a
// writer that is gone"; bytes of PATH that are not UTF-8 escaped as \xNN).
std::string StaleTempFileNote(absl::string_view path);

// AbandonTempFiles(): for a process about to end on a signal: removes every
// temporary file of this process that is neither installed nor removed yet,
// and from then on blocks, for good, any thread that creates, installs or
// destroys a TempFile, so that no file appears or is installed after the
// removal. The caller must end the process right after (_exit()). Returns
// how many files were removed. Not async-signal-safe (it takes a mutex):
// call it from an ordinary thread, such as one that waits in sigwait(),
// never from a signal handler.
int AbandonTempFiles();

// DirName(): the folder part of `path` ("." when it has none).
std::string DirName(absl::string_view path);

}  // namespace zcpack::format

#endif  // ZCPACK_FORMAT_TEMP_FILE_H_

// TempFile: unique, recognisable temporary names that fit any legal
// destination name, and removal of the ones whose writer is gone.
#include "zcpack/format/temp_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/container_fixtures.h"
#include "zcpack/format/container_writer.h"

namespace zcpack::format {
namespace {

using testing::ScopedTempDir;

// The id of a process that has exited and been reaped.
int GonePid() {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  ::waitpid(pid, nullptr, 0);
  return static_cast<int>(pid);
}

TEST(TempFileTest, NamesAreUniqueRecognisableAndCarryThePid) {
  ScopedTempDir dir;
  auto a = TempFile::Create(dir.File("m.zcpack"));
  auto b = TempFile::Create(dir.File("m.zcpack"));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->path(), b->path());
  const std::string name = a->path().substr(dir.path().size() + 1);
  EXPECT_THAT(name, ::testing::StartsWith(".m.zcpack.zcpack-tmp-" + std::to_string(::getpid()) + "-"));
  int pid = 0;
  EXPECT_TRUE(IsTempFileName(name, &pid));
  EXPECT_EQ(pid, ::getpid());
  EXPECT_FALSE(IsTempFileName("m.zcpack"));
  EXPECT_FALSE(IsTempFileName(".m.zcpack.zcpack-tmp-abc-123456"));
}

// A 247-byte destination name is legal; the temporary name used to add 20
// bytes and fail with ENAMETOOLONG.
TEST(TempFileTest, LongestLegalDestinationNamesWork) {
  ScopedTempDir dir;
  for (const size_t length : {size_t{247}, size_t{255}}) {
    const std::string destination = dir.File(std::string(length - 7, 'n') + ".zcpack");
    auto temp = TempFile::Create(destination);
    ASSERT_TRUE(temp.ok()) << length << ": " << temp.status();
    EXPECT_LE(temp->path().size() - dir.path().size() - 1, size_t{255});
    ASSERT_TRUE(temp->Install(/*overwrite=*/false).ok());
    EXPECT_EQ(::access(destination.c_str(), F_OK), 0);
  }
  EXPECT_EQ(dir.List().size(), 2u);
}

TEST(TempFileTest, ContainerWriterTakesTheLongestLegalName) {
  ScopedTempDir dir;
  const std::string destination = dir.File(std::string(240, 'c') + ".zcpack");
  auto writer = ContainerWriter::Create(destination, {}, WriterOptions());
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->Finish(Manifest()).ok());
  EXPECT_EQ(dir.List(), std::vector<std::string>{std::string(240, 'c') + ".zcpack"});
}

TEST(TempFileTest, DestroyedWithoutInstallLeavesNothing) {
  ScopedTempDir dir;
  {
    auto temp = TempFile::Create(dir.File("m"));
    ASSERT_TRUE(temp.ok());
    EXPECT_EQ(dir.List().size(), 1u);
  }
  EXPECT_TRUE(dir.List().empty());
}

TEST(TempFileTest, RemovesOnlyTempFilesWhoseWriterIsGone) {
  ScopedTempDir dir;
  // Locked by a live writer (this process, through another descriptor).
  // Created first: Create() itself sweeps the folder.
  auto live = TempFile::Create(dir.File("n.zcpack"));
  ASSERT_TRUE(live.ok());
  const std::string stale = ".m.zcpack.zcpack-tmp-" + std::to_string(GonePid()) + "-Ab12Cd";
  std::ofstream(dir.File(stale)) << "left by kill -9";
  // Not locked, but its process (the parent of this test) is alive.
  const std::string unlocked_alive =
      ".o.zcpack.zcpack-tmp-" + std::to_string(::getppid()) + "-Zz99zz";
  std::ofstream(dir.File(unlocked_alive)) << "x";
  std::ofstream(dir.File("unrelated.zcpack-tmp")) << "x";

  const auto removed = RemoveStaleTempFiles(dir.path());
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_THAT(*removed, ::testing::ElementsAre(stale));
  EXPECT_THAT(dir.List(), ::testing::UnorderedElementsAre(
                              live->path().substr(dir.path().size() + 1), unlocked_alive,
                              "unrelated.zcpack-tmp"));
}

TEST(TempFileTest, LockedTempFileOfAGoneProcessIsKept) {
  // The lock, not the name, decides: a file still locked (by a process that
  // inherited the descriptor, say) is being written.
  ScopedTempDir dir;
  const std::string name = ".m.zcpack-tmp-" + std::to_string(GonePid()) + "-Ab12Cd";
  std::ofstream(dir.File(name)) << "x";
  const int fd = ::open(dir.File(name).c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX), 0);
  const auto removed = RemoveStaleTempFiles(dir.path());
  ASSERT_TRUE(removed.ok());
  EXPECT_TRUE(removed->empty());
  ::close(fd);
  EXPECT_THAT(*RemoveStaleTempFiles(dir.path()), ::testing::ElementsAre(name));
}

// Every writer sweeps: creating a temporary file removes the stale ones of
// its folder first and says which.
TEST(TempFileTest, CreateRemovesStaleTempFilesFirst) {
  ScopedTempDir dir;
  const std::string stale = ".m.zcpack.zcpack-tmp-" + std::to_string(GonePid()) + "-Ab12Cd";
  std::ofstream(dir.File(stale)) << "left by kill -9";
  auto temp = TempFile::Create(dir.File("other.json"));
  ASSERT_TRUE(temp.ok()) << temp.status();
  EXPECT_THAT(temp->removed_stale(), ::testing::ElementsAre(dir.File(stale)));
  EXPECT_THAT(dir.List(), ::testing::ElementsAre(temp->path().substr(dir.path().size() + 1)));
  EXPECT_EQ(StaleTempFileNote(dir.File(stale)),
            "removed " + dir.File(stale) + ", a temporary file left by a writer that is gone");
}

// AbandonTempFiles() ends the process's use of TempFile for good, so it runs
// in a child: it removes every file not yet installed or destroyed, and
// nothing installed or destroyed before it.
TEST(TempFileTest, AbandonRemovesTheLiveTempFilesOfTheProcess) {
  ScopedTempDir dir;
  const pid_t child = ::fork();
  if (child == 0) {
    auto installed = TempFile::Create(dir.File("installed"));
    auto destroyed = TempFile::Create(dir.File("destroyed"));
    auto a = TempFile::Create(dir.File("a"));
    auto b = TempFile::Create(dir.File("b"));
    if (!installed.ok() || !destroyed.ok() || !a.ok() || !b.ok()) ::_exit(10);
    if (!installed->Install(false).ok()) ::_exit(11);
    { TempFile gone = *std::move(destroyed); }
    ::_exit(AbandonTempFiles());
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
  EXPECT_THAT(dir.List(), ::testing::ElementsAre("installed"));
}

}  // namespace
}  // namespace zcpack::format

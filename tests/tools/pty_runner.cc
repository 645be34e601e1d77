#include "tests/tools/pty_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>

#include "tests/tools/cli_runner.h"

namespace zcpack::testing {

ScreenModel::ScreenModel(int columns) : columns_(columns) {}

std::string& ScreenModel::Row() {
  while (rows_.size() <= row_) rows_.emplace_back();
  return rows_[row_];
}

void ScreenModel::Put(char c) {
  if (col_ >= columns_) {
    ++wraps_;
    ++row_;
    col_ = 0;
  }
  std::string& line = Row();
  if (line.size() <= static_cast<size_t>(col_)) line.resize(col_ + 1, ' ');
  line[col_] = c;
  ++col_;
}

void ScreenModel::Feed(const std::string& bytes) {
  for (const char c : bytes) {
    if (!pending_escape_.empty()) {
      pending_escape_.push_back(c);
      if (pending_escape_.size() == 2 && c != '[') {
        unknown_.push_back(pending_escape_);
        pending_escape_.clear();
      } else if (pending_escape_.size() > 2 && c >= 0x40 && c <= 0x7e) {
        const std::string params = pending_escape_.substr(2, pending_escape_.size() - 3);
        std::string& line = Row();
        if (c == 'K' && (params.empty() || params == "0")) {
          if (line.size() > static_cast<size_t>(col_)) line.resize(col_);
        } else if (c == 'K' && params == "1") {
          for (int i = 0; i <= col_ && i < static_cast<int>(line.size()); ++i) line[i] = ' ';
        } else if (c == 'K' && params == "2") {
          line.clear();
        } else {
          unknown_.push_back(pending_escape_);
        }
        pending_escape_.clear();
      }
      continue;
    }
    const unsigned char u = static_cast<unsigned char>(c);
    if (c == '\x1b') {
      pending_escape_ = "\x1b";
    } else if (c == '\r') {
      col_ = 0;
    } else if (c == '\n') {
      ++row_;
      Row();
    } else if (c == '\b') {
      if (col_ > 0) --col_;
    } else if (c == '\t') {
      col_ = std::min(columns_ - 1, (col_ / 8 + 1) * 8);
    } else if ((u & 0xc0) == 0x80) {
      // A UTF-8 continuation byte: part of the character before it.
      Row().push_back(c);
    } else if (u >= 0x20 && u != 0x7f) {
      Put(c);
    }
  }
}

std::vector<std::string> ScreenModel::Lines() const {
  std::vector<std::string> lines;
  for (std::string line : rows_) {
    while (!line.empty() && line.back() == ' ') line.pop_back();
    lines.push_back(std::move(line));
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

PtyResult RunZcpackInPty(const std::vector<std::string>& args, int columns, int rows,
                         bool stdout_to_file, double timeout_seconds,
                         const std::string& interrupt_when_seen) {
  PtyResult result;
  int master = -1, slave = -1;
  if (::openpty(&master, &slave, nullptr, nullptr, nullptr) != 0) std::abort();
  struct winsize size {};
  size.ws_col = static_cast<unsigned short>(columns);
  size.ws_row = static_cast<unsigned short>(rows);
  if (::ioctl(slave, TIOCSWINSZ, &size) != 0) std::abort();
  const std::string dir = MakeTempDir("pty");
  const std::string out_path = dir + "/stdout";
  std::vector<std::string> argv_storage = ZcpackCommandLine(args);
  std::vector<char*> argv;
  for (auto& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setsid();
    ::ioctl(slave, TIOCSCTTY, 0);
    ::dup2(slave, 0);
    ::dup2(slave, 1);
    ::dup2(slave, 2);
    if (stdout_to_file) {
      const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(out, 1);
      ::close(out);
    }
    ::close(master);
    ::close(slave);
    ::unsetenv("COLUMNS");
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(slave);
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(timeout_seconds));
  bool killed = false;
  bool interrupted = false;
  char buffer[4096];
  while (true) {
    struct pollfd p = {master, POLLIN, 0};
    const int ready = ::poll(&p, 1, 100);
    if (ready > 0) {
      const ssize_t n = ::read(master, buffer, sizeof buffer);
      if (n > 0) {
        result.raw.append(buffer, static_cast<size_t>(n));
        if (!interrupt_when_seen.empty() && !interrupted &&
            result.raw.find(interrupt_when_seen) != std::string::npos) {
          ::kill(pid, SIGINT);
          interrupted = true;
        }
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      break;  // EIO: every copy of the terminal's slave side is closed
    }
    if (std::chrono::steady_clock::now() > deadline && !killed) {
      ::kill(pid, SIGKILL);
      killed = true;
    }
    if (ready < 0 && errno != EINTR) break;
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(master);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (stdout_to_file) result.stdout_file = ReadWholeFile(out_path);
  RemoveTree(dir);
  return result;
}

}  // namespace zcpack::testing

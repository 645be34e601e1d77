#include "tests/tools/cli_runner.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace zcpack::testing {
std::vector<std::string> ZcpackCommandLine(const std::vector<std::string>& args) {
  std::vector<std::string> line = {ZCPACK_BINARY};
  line.insert(line.end(), args.begin(), args.end());
  return line;
}

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string MakeTempDir(const std::string& tag) {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base != nullptr && *base ? base : "/tmp") + "/zcpack-" + tag +
                        "-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) std::abort();
  return pattern;
}

void RemoveTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

RunningZcpack StartZcpack(const std::vector<std::string>& args, void (*setup)()) {
  RunningZcpack running;
  running.dir = MakeTempDir("cli");
  const std::string out_path = running.dir + "/stdout", err_path = running.dir + "/stderr";
  std::vector<std::string> argv_storage = ZcpackCommandLine(args);
  std::vector<char*> argv;
  for (auto& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int in = ::open("/dev/null", O_RDONLY);
    const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    if (setup != nullptr) setup();
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  running.pid = pid;
  return running;
}

CliResult FinishZcpack(const RunningZcpack& running, double timeout_seconds) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(timeout_seconds));
  int status = 0;
  struct rusage usage {};
  while (::wait4(running.pid, &status, WNOHANG, &usage) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(running.pid, SIGKILL);
      ::wait4(running.pid, &status, 0, &usage);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CliResult result;
  result.max_rss_kib = usage.ru_maxrss;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.out = ReadWholeFile(running.dir + "/stdout");
  result.err = ReadWholeFile(running.dir + "/stderr");
  RemoveTree(running.dir);
  return result;
}

CliResult RunZcpack(const std::vector<std::string>& args, void (*setup)()) {
  return FinishZcpack(StartZcpack(args, setup));
}

}  // namespace zcpack::testing

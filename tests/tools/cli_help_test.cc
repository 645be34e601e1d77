// --help is the one description of the flags: the README documents the same
// flags for each command (both ways), the parser accepts exactly those (the
// bash completion is rendered from the parser's table), the man page and the
// completions generated from the same tables are installed by `cmake
// --install`, and the completion completes.
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/tools/cli_runner.h"

namespace zcpack::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

bool IsFlagChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-'; }

// Every "-x" / "--name" token in `text`.
std::set<std::string> FlagTokens(const std::string& text) {
  std::set<std::string> flags;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '-' || (i > 0 && IsFlagChar(text[i - 1]))) continue;
    size_t start = i, j = i;
    while (j < text.size() && j - start < 2 && text[j] == '-') ++j;
    if (j >= text.size() || !std::isalpha(static_cast<unsigned char>(text[j]))) continue;
    while (j < text.size() && IsFlagChar(text[j])) ++j;
    flags.insert(text.substr(start, j - start));
    i = j;
  }
  return flags;
}

// The commands `zcpack --help` lists.
std::vector<std::string> Commands() {
  const CliResult r = RunZcpack({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  std::vector<std::string> names;
  std::istringstream in(r.out);
  std::string line;
  bool in_list = false;
  while (std::getline(in, line)) {
    if (line == "Commands:") {
      in_list = true;
      continue;
    }
    if (!in_list) continue;
    if (line.empty()) break;
    const size_t end = line.find(' ', 2);
    names.push_back(line.substr(2, end - 2));
  }
  return names;
}

// The flags `zcpack COMMAND --help` documents: the terms of its flag
// entries (lines that start with two spaces and a dash).
std::set<std::string> HelpFlags(const std::string& command) {
  const CliResult r = RunZcpack({command, "--help"});
  EXPECT_EQ(r.exit_code, 0) << command;
  std::set<std::string> flags;
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() < 4 || line.compare(0, 3, "  -") != 0) continue;
    const size_t gap = line.find("  ", 2);
    for (const std::string& f : FlagTokens(line.substr(2, gap == std::string::npos ? gap : gap - 2))) {
      flags.insert(f);
    }
  }
  return flags;
}

// README's "Flags of each command" table: command -> flags, with the row
// "every command" added to each.
std::map<std::string, std::set<std::string>> ReadmeFlags() {
  const std::string readme = ReadWholeFile(std::string(ZCPACK_SOURCE_DIR) + "/README.md");
  const size_t section = readme.find("### Flags of each command");
  EXPECT_NE(section, std::string::npos) << "README has no flag table";
  std::map<std::string, std::set<std::string>> table;
  std::set<std::string> common;
  std::istringstream in(readme.substr(section));
  std::string line;
  std::getline(in, line);
  bool in_table = false;
  while (std::getline(in, line)) {
    if (line.rfind("|", 0) != 0) {
      if (in_table) break;
      continue;
    }
    in_table = true;
    const size_t second = line.find('|', 1);
    if (second == std::string::npos) continue;
    std::string cell = line.substr(1, second - 1);
    const size_t a = cell.find('`'), b = cell.rfind('`');
    const std::string name = a != std::string::npos && b > a ? cell.substr(a + 1, b - a - 1)
                                                               : std::string(cell);
    const std::set<std::string> flags = FlagTokens(line.substr(second));
    if (name.find("every command") != std::string::npos) {
      common = flags;
    } else if (name != " command " && name.find("---") == std::string::npos) {
      table[name] = flags;
    }
  }
  EXPECT_FALSE(common.empty()) << "README's flag table has no 'every command' row";
  for (auto& [name, flags] : table) flags.insert(common.begin(), common.end());
  return table;
}

// The bash completion's flags for each command (the parser's table).
std::map<std::string, std::set<std::string>> CompletionFlags() {
  const CliResult r = RunZcpack({"--completion", "bash"});
  EXPECT_EQ(r.exit_code, 0);
  std::map<std::string, std::set<std::string>> table;
  std::istringstream in(r.out);
  std::string line, command;
  while (std::getline(in, line)) {
    if (line.size() > 5 && line.compare(0, 4, "    ") == 0 && line.back() == ')' &&
        line.find(' ', 4) == std::string::npos) {
      command = line.substr(4, line.size() - 5);
    } else if (!command.empty() && line.find("flags=\"") != std::string::npos) {
      table[command] = FlagTokens(line);
    }
  }
  return table;
}

TEST(HelpTest, ReadmeDocumentsTheFlagsHelpDoesForEveryCommand) {
  const std::map<std::string, std::set<std::string>> readme = ReadmeFlags();
  for (const std::string& command : Commands()) {
    ASSERT_TRUE(readme.count(command)) << "README's flag table has no row for " << command;
    const std::set<std::string> help = HelpFlags(command);
    for (const std::string& f : help) {
      EXPECT_TRUE(readme.at(command).count(f)) << command << " --help documents " << f
                                               << ", README's table does not";
    }
    for (const std::string& f : readme.at(command)) {
      EXPECT_TRUE(help.count(f)) << "README documents " << command << " " << f
                                 << ", --help does not";
    }
  }
  EXPECT_EQ(readme.size(), Commands().size()) << "README lists a command --help does not";
}

TEST(HelpTest, HelpDocumentsExactlyTheFlagsTheParserAccepts) {
  const std::map<std::string, std::set<std::string>> parser = CompletionFlags();
  for (const std::string& command : Commands()) {
    ASSERT_TRUE(parser.count(command)) << command;
    EXPECT_EQ(HelpFlags(command), parser.at(command)) << command;
  }
}

TEST(HelpTest, EveryCommandTakesQuietVerboseAndHelp) {
  for (const std::string& command : Commands()) {
    for (const char* flag : {"-q", "--quiet", "-v", "--verbose"}) {
      const CliResult r = RunZcpack({command, flag, "--help"});
      EXPECT_EQ(r.exit_code, 0) << command << " " << flag << ": " << r.err;
    }
  }
}

TEST(HelpTest, VersionFlagIsListedAndWorks) {
  const CliResult help = RunZcpack({"--help"});
  EXPECT_THAT(help.out, HasSubstr("-V, --version"));
  EXPECT_THAT(help.out, HasSubstr("-h, --help"));
  const CliResult shortv = RunZcpack({"-V"});
  const CliResult longv = RunZcpack({"--version"});
  EXPECT_EQ(shortv.exit_code, 0);
  EXPECT_THAT(shortv.out, ::testing::StartsWith("zcpack "));
  EXPECT_EQ(shortv.out, longv.out);
}

// Runs the bash completion for `words` (the cursor on the last) and returns
// COMPREPLY, one entry per line.
std::string Complete(const std::string& script, const std::vector<std::string>& words,
                     const std::string& cwd = ".") {
  std::string array;
  for (const std::string& w : words) array += " \"" + w + "\"";
  const std::string dir = MakeTempDir("complete");
  const std::string out = dir + "/reply";
  const std::string command = "cd '" + cwd + "' && bash --norc --noprofile -c 'source \"" + script +
                              "\"; COMP_WORDS=(" + array + "); COMP_CWORD=" +
                              std::to_string(words.size() - 1) +
                              "; _zcpack; printf \"%s\\n\" \"${COMPREPLY[@]}\"' > '" + out + "'";
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
  const std::string reply = ReadWholeFile(out);
  RemoveTree(dir);
  return reply;
}

TEST(HelpTest, BashCompletionCompletesCommandsFlagsAndFiles) {
  const std::string dir = MakeTempDir("bash-completion");
  const std::string script = dir + "/zcpack.bash";
  {
    std::ofstream(script) << RunZcpack({"--completion", "bash"}).out;
  }
  EXPECT_EQ(Complete(script, {"zcpack", "con"}), "convert\n");
  EXPECT_EQ(Complete(script, {"zcpack", "-"}), "--help\n-h\n--version\n-V\n");
  EXPECT_EQ(Complete(script, {"zcpack", "convert", "--al"}), "--alignment\n--allow-nonfinite\n");
  const std::string verify = Complete(script, {"zcpack", "verify", "--"});
  EXPECT_THAT(verify, HasSubstr("--level\n"));
  EXPECT_THAT(verify, HasSubstr("--quiet\n"));
  EXPECT_THAT(verify, HasSubstr("--verbose\n"));
  EXPECT_THAT(verify, Not(HasSubstr("--quant")));
  // A flag's values, where the program has them in a table.
  EXPECT_EQ(Complete(script, {"zcpack", "synth", "--shape", "sto"}), "stories15m\nstories110m\n");
  EXPECT_EQ(Complete(script, {"zcpack", "convert", "src", "--quant", "q4"}), "q4_0\nq4_k\n");
  EXPECT_EQ(Complete(script, {"zcpack", "verify", "c", "--level", ""}), "structure\nfull\n");
  // After a flag that takes another value, and for arguments: file names.
  std::ofstream(dir + "/model.zcpack") << "x";
  EXPECT_EQ(Complete(script, {"zcpack", "convert", "src", "--out", "mod"}, dir), "model.zcpack\n");
  EXPECT_EQ(Complete(script, {"zcpack", "inspect", "mo"}, dir), "model.zcpack\n");
  // A flag that takes no value is followed by files too, not by its value.
  EXPECT_EQ(Complete(script, {"zcpack", "inspect", "--json", "mo"}, dir), "model.zcpack\n");
  RemoveTree(dir);
}

TEST(HelpTest, InstallPutsTheManPageAndCompletionsInPlace) {
  const std::string prefix = MakeTempDir("install-docs");
  const std::string command = std::string("'") + ZCPACK_CMAKE_COMMAND + "' --install '" +
                              ZCPACK_BUILD_DIR + "' --prefix '" + prefix + "' > '" + prefix +
                              "/install.log' 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << ReadWholeFile(prefix + "/install.log");
  const std::string man = ReadWholeFile(prefix + "/share/man/man1/zcpack.1");
  const std::string bash = ReadWholeFile(prefix + "/share/bash-completion/completions/zcpack");
  const std::string zsh = ReadWholeFile(prefix + "/share/zsh/site-functions/_zcpack");
  ASSERT_FALSE(man.empty());
  ASSERT_FALSE(bash.empty());
  ASSERT_FALSE(zsh.empty());
  EXPECT_THAT(man, HasSubstr(".TH ZCPACK 1"));
  EXPECT_THAT(zsh, HasSubstr("#compdef zcpack"));
  // roff writes a dash as \-.
  std::string man_plain = man;
  for (size_t at = man_plain.find("\\-"); at != std::string::npos; at = man_plain.find("\\-", at)) {
    man_plain.erase(at, 1);
  }
  for (const std::string& command : Commands()) {
    EXPECT_THAT(man_plain, HasSubstr(".SS \"zcpack " + command + "\"")) << command;
    EXPECT_THAT(bash, HasSubstr("    " + command + ")\n")) << command;
    EXPECT_THAT(zsh, HasSubstr("    " + command + ")\n")) << command;
    for (const std::string& flag : HelpFlags(command)) {
      EXPECT_THAT(man_plain, HasSubstr(flag)) << command << " " << flag;
      EXPECT_THAT(bash, HasSubstr(flag)) << command << " " << flag;
      EXPECT_THAT(zsh, HasSubstr(flag)) << command << " " << flag;
    }
  }
  // The man page renders without a warning where man is installed.
  if (std::system("command -v groff > /dev/null 2>&1") == 0) {
    const std::string check = "groff -man -Tutf8 -ww -z '" + prefix +
                              "/share/man/man1/zcpack.1' > '" + prefix + "/groff.log' 2>&1";
    EXPECT_EQ(std::system(check.c_str()), 0);
    EXPECT_EQ(ReadWholeFile(prefix + "/groff.log"), "");
  }
  RemoveTree(prefix);
}

}  // namespace
}  // namespace zcpack::testing

#include "tools/cli/args.h"

#include <map>
#include <utility>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "tools/cli/suggest.h"

namespace zcpack::cli {
namespace {

// A flag as the user writes it: "-n", "--keep-f16".
std::string Spelling(const std::string& name) {
  return name.size() == 1 ? absl::StrCat("-", name)
                          : absl::StrCat("--", absl::StrReplaceAll(name, {{"_", "-"}}));
}

// "unknown flag 'ARG'", with the nearest flag of the command when one is
// near enough to be what was meant.
absl::Status UnknownFlag(const std::string& arg, const std::string& name,
                         const std::set<std::string>& allowed) {
  std::vector<std::string> spellings;
  for (const std::string& a : allowed) spellings.push_back(Spelling(a));
  return absl::InvalidArgumentError(
      absl::StrCat("unknown flag '", arg, "'", DidYouMean(Spelling(name), spellings)));
}

// One-letter aliases of long flags. (A flag whose own name is one letter,
// such as -n, needs none.)
constexpr std::pair<const char*, const char*> kShortFlags[] = {
    {"o", "out"}, {"q", "quiet"}, {"v", "verbose"}};

}  // namespace

std::string ShortFlagName(const std::string& name) {
  for (const auto& [short_name, long_name] : kShortFlags) {
    if (name == long_name) return short_name;
  }
  return "";
}

absl::StatusOr<ParsedArgs> ParseArgs(const std::vector<std::string>& args,
                                     const std::set<std::string>& allowed,
                                     const std::set<std::string>& repeatable) {
  ParsedArgs parsed;
  std::map<std::string, std::vector<std::string>> values;
  bool only_positional = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (only_positional || arg.size() < 2 || arg[0] != '-') {
      parsed.positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      only_positional = true;
      continue;
    }
    if (arg == "-h" || arg == "--help") {
      parsed.help = true;
      continue;
    }
    std::string body = arg.substr(arg[1] == '-' ? 2 : 1);
    std::string value;
    bool has_value = false;
    if (const size_t eq = body.find('='); eq != std::string::npos) {
      value = body.substr(eq + 1);
      body.resize(eq);
      has_value = true;
    }
    std::string name = absl::StrReplaceAll(body, {{"-", "_"}});
    for (const auto& [short_name, long_name] : kShortFlags) {
      if (name == short_name) name = long_name;
    }
    bool negated = false;
    if (!allowed.count(name) && name.rfind("no", 0) == 0 && allowed.count(name.substr(2))) {
      negated = true;
      name = name.substr(2);
    }
    if (!allowed.count(name)) return UnknownFlag(arg, name, allowed);
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr) {
      return absl::InternalError(absl::StrCat("flag --", name, " is not defined"));
    }
    if (flag->IsOfType<bool>()) {
      if (negated && has_value) {
        return absl::InvalidArgumentError(absl::StrCat("flag '", arg, "' takes no value"));
      }
      if (!has_value) value = negated ? "false" : "true";
    } else {
      if (negated) return UnknownFlag(arg, absl::StrCat("no", name), allowed);
      if (!has_value) {
        if (i + 1 >= args.size()) {
          return absl::InvalidArgumentError(absl::StrCat("flag '", arg, "' needs a value"));
        }
        value = args[++i];
      }
    }
    values[name].push_back(value);
  }
  for (const auto& [name, list] : values) {
    if (list.size() > 1 && !repeatable.count(name)) {
      return absl::InvalidArgumentError(absl::StrCat("flag --", name, " given more than once"));
    }
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    const std::vector<std::string> each =
        flag->IsOfType<std::vector<std::string>>() ? std::vector<std::string>{absl::StrJoin(list, ",")}
                                                   : list;
    for (const std::string& value : each) {
      std::string error;
      if (!flag->ParseFrom(value, &error)) {
        return absl::InvalidArgumentError(
            absl::StrCat("bad value '", value, "' for --", name, ": ", error));
      }
    }
    if (repeatable.count(name)) parsed.repeated[name] = list;
    parsed.given.insert(name);
  }
  return parsed;
}

}  // namespace zcpack::cli

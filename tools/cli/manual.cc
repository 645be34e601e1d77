#include "tools/cli/manual.h"

#include <cctype>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tools/cli/terminal.h"

namespace zcpack::cli {
namespace {

bool StartsFlagEntry(absl::string_view line) {
  return line.size() > 3 && line.substr(0, 3) == "  -" &&
         (std::isalpha(static_cast<unsigned char>(line[3])) || line[3] == '-');
}

// The flags a term names: "--out, -o" gives "--out" and "-o".
std::vector<std::string> Spellings(absl::string_view term) {
  std::vector<std::string> found;
  for (absl::string_view word : absl::StrSplit(term, absl::ByAnyChar(" ,|[]"), absl::SkipEmpty())) {
    size_t dashes = 0;
    while (dashes < word.size() && dashes < 2 && word[dashes] == '-') ++dashes;
    if (dashes == 0 || dashes == word.size() ||
        !std::isalpha(static_cast<unsigned char>(word[dashes]))) {
      continue;
    }
    size_t end = dashes;
    while (end < word.size() &&
           (std::isalnum(static_cast<unsigned char>(word[end])) || word[end] == '-')) {
      ++end;
    }
    found.emplace_back(word.substr(0, end));
  }
  return found;
}

// roff text: backslashes and dashes escaped, and a line that would read as
// a request (a leading '.' or ''') protected.
std::string Roff(absl::string_view text) {
  std::string out = absl::StrReplaceAll(text, {{"\\", "\\e"}, {"-", "\\-"}});
  if (!out.empty() && (out[0] == '.' || out[0] == '\'')) out.insert(0, "\\&");
  return out;
}

// The help text as man(7) paragraphs: prose filled, indented lines kept as
// they are, flag entries as tagged paragraphs.
std::string RoffHelp(absl::string_view help) {
  const std::vector<HelpFlagEntry> entries = HelpFlagEntries(help);
  std::string out;
  bool literal = false;
  auto end_literal = [&] {
    if (literal) absl::StrAppend(&out, ".fi\n");
    literal = false;
  };
  size_t entry = 0;
  const std::vector<absl::string_view> lines = absl::StrSplit(help, '\n');
  for (size_t i = 0; i < lines.size(); ++i) {
    const absl::string_view line = lines[i];
    if (entry < entries.size() && entries[entry].first_line == i) {
      end_literal();
      const HelpFlagEntry& e = entries[entry++];
      absl::StrAppend(&out, ".TP\n\\fB", Roff(e.term), "\\fR\n", Roff(e.description), "\n");
      i = e.end_line - 1;
      continue;
    }
    if (absl::StripAsciiWhitespace(line).empty()) {
      end_literal();
      if (i + 1 < lines.size()) absl::StrAppend(&out, ".PP\n");
      continue;
    }
    if (line[0] == ' ') {
      if (!literal) absl::StrAppend(&out, ".nf\n");
      literal = true;
    } else {
      end_literal();
    }
    absl::StrAppend(&out, Roff(line), "\n");
  }
  end_literal();
  return out;
}

std::string FirstLine(absl::string_view text) {
  const size_t end = text.find('\n');
  return std::string(end == absl::string_view::npos ? text : text.substr(0, end));
}

// Text for a zsh _arguments description (inside [...] of a single-quoted
// word).
std::string ZshDescription(absl::string_view text) {
  std::string s = absl::StrReplaceAll(
      text, {{"'", "'\\''"}, {"[", "("}, {"]", ")"}, {":", " -"}, {"\\", "/"}});
  if (s.size() > 70) s = absl::StrCat(s.substr(0, 67), "...");
  return s;
}

// The description --help gives `spelling` in `entries`, or "".
std::string DescriptionOf(const std::vector<HelpFlagEntry>& entries, absl::string_view spelling) {
  for (const HelpFlagEntry& e : entries) {
    for (const std::string& s : e.spellings) {
      if (s == spelling) return e.description;
    }
  }
  return "";
}

}  // namespace

std::string FlagSpelling(absl::string_view name) {
  return name.size() == 1 ? absl::StrCat("-", name)
                          : absl::StrCat("--", absl::StrReplaceAll(name, {{"_", "-"}}));
}

std::vector<HelpFlagEntry> HelpFlagEntries(absl::string_view help) {
  std::vector<HelpFlagEntry> entries;
  bool continued_term = false;  // the last term ended with ','
  bool in_entry = false;
  size_t index = 0;
  for (absl::string_view line : absl::StrSplit(help, '\n')) {
    const size_t i = index++;
    if (StartsFlagEntry(line)) {
      absl::string_view body = line.substr(2);
      const size_t gap = body.find("  ");
      absl::string_view term = gap == absl::string_view::npos ? body : body.substr(0, gap);
      absl::string_view description =
          gap == absl::string_view::npos ? absl::string_view() : absl::StripLeadingAsciiWhitespace(body.substr(gap));
      term = absl::StripTrailingAsciiWhitespace(term);
      if (continued_term && !entries.empty()) {
        HelpFlagEntry& e = entries.back();
        absl::StrAppend(&e.term, " ", term);
        for (std::string& s : Spellings(term)) e.spellings.push_back(std::move(s));
        e.description = std::string(description);
        e.end_line = i + 1;
      } else {
        entries.push_back({std::string(term), Spellings(term), std::string(description), i, i + 1});
      }
      continued_term = absl::EndsWith(term, ",") && description.empty();
      in_entry = true;
      continue;
    }
    continued_term = false;
    if (in_entry && absl::StartsWith(line, "   ") && !absl::StripAsciiWhitespace(line).empty()) {
      std::string& d = entries.back().description;
      if (!d.empty()) d.push_back(' ');
      absl::StrAppend(&d, absl::StripAsciiWhitespace(line));
      entries.back().end_line = i + 1;
      continue;
    }
    in_entry = false;
  }
  return entries;
}

std::string RenderManPage(const std::vector<CommandDoc>& commands, absl::string_view version,
                          absl::string_view description, absl::string_view global_flags,
                          absl::string_view trailer) {
  std::string out = absl::StrCat(
      ".\\\" Generated by `zcpack --help-man` from the tables `zcpack --help` prints.\n",
      ".TH ZCPACK 1 \"\" \"zcpack ", Roff(version), "\" \"User Commands\"\n",
      ".SH NAME\nzcpack \\- ", Roff(description), "\n",
      ".SH SYNOPSIS\n.B zcpack\n.I COMMAND\n[\\fIARGS\\fR] [\\fIFLAGS\\fR]\n.br\n",
      ".B zcpack\n\\-\\-help | \\-\\-version\n",
      ".SH DESCRIPTION\nCommands:\n.nf\n");
  for (const CommandDoc& c : commands) absl::StrAppend(&out, "  ", Roff(c.name), "\n");
  absl::StrAppend(&out, ".fi\n.SH OPTIONS\n", RoffHelp(global_flags), ".SH COMMANDS\n");
  for (const CommandDoc& c : commands) {
    // The synopsis as --help's usage line, wrapped: man does not fill .nf.
    const std::string synopsis = WrapToWidth(absl::StrCat("Usage: zcpack ", c.synopsis), 78);
    absl::StrAppend(&out, ".SS \"zcpack ", Roff(c.name), "\"\n.nf\n", Roff(synopsis),
                    "\n.fi\n.PP\n", RoffHelp(c.help));
  }
  absl::StrAppend(&out, ".SH \"EXIT STATUS\"\n", RoffHelp(trailer));
  return out;
}

std::string RenderBashCompletion(const std::vector<CommandDoc>& commands,
                                 absl::string_view global_flags) {
  std::vector<std::string> names;
  for (const CommandDoc& c : commands) names.push_back(c.name);
  // Flags are global (absl), so their values are the same in every command.
  std::map<std::string, std::string> choices;
  for (const CommandDoc& c : commands) {
    for (const FlagDoc& f : c.flags) {
      if (f.choices.empty()) continue;
      choices[FlagSpelling(f.name)] = absl::StrJoin(f.choices, " ");
      if (!f.short_name.empty()) choices[FlagSpelling(f.short_name)] = absl::StrJoin(f.choices, " ");
    }
  }
  std::string out = absl::StrCat(
      "# bash completion for zcpack. Generated by `zcpack --completion bash` from the\n"
      "# tables `zcpack --help` prints.\n"
      "_zcpack() {\n"
      "  local cur=\"${COMP_WORDS[COMP_CWORD]}\"\n"
      "  local prev=\"${COMP_WORDS[COMP_CWORD-1]}\"\n"
      "  if [[ $COMP_CWORD -eq 1 ]]; then\n"
      "    COMPREPLY=( $(compgen -W \"",
      absl::StrJoin(names, " "), " ", global_flags,
      "\" -- \"$cur\") )\n"
      "    return 0\n"
      "  fi\n"
      "  local flags valued\n"
      "  case \"${COMP_WORDS[1]}\" in\n");
  for (const CommandDoc& c : commands) {
    std::vector<std::string> flags, valued;
    for (const FlagDoc& f : c.flags) {
      flags.push_back(FlagSpelling(f.name));
      if (!f.short_name.empty()) flags.push_back(FlagSpelling(f.short_name));
      if (f.takes_value) {
        valued.push_back(FlagSpelling(f.name));
        if (!f.short_name.empty()) valued.push_back(FlagSpelling(f.short_name));
      }
    }
    flags.push_back("--help");
    flags.push_back("-h");
    absl::StrAppend(&out, "    ", c.name, ")\n      flags=\"", absl::StrJoin(flags, " "),
                    "\"\n      valued=\" ", absl::StrJoin(valued, " "), " \"\n      ;;\n");
  }
  absl::StrAppend(&out,
                  "    *)\n      return 0\n      ;;\n"
                  "  esac\n"
                  "  if [[ \"$valued\" == *\" $prev \"* ]]; then\n"
                  "    case \"$prev\" in\n");
  for (const auto& [spelling, values] : choices) {
    absl::StrAppend(&out, "      ", spelling, ")\n        COMPREPLY=( $(compgen -W \"", values,
                    "\" -- \"$cur\") )\n        return 0\n        ;;\n");
  }
  absl::StrAppend(&out,
                  "    esac\n"
                  "    COMPREPLY=( $(compgen -f -- \"$cur\") )\n"
                  "    return 0\n"
                  "  fi\n"
                  "  if [[ \"$cur\" == -* ]]; then\n"
                  "    COMPREPLY=( $(compgen -W \"$flags\" -- \"$cur\") )\n"
                  "    return 0\n"
                  "  fi\n"
                  "  COMPREPLY=( $(compgen -f -- \"$cur\") )\n"
                  "}\n"
                  "complete -o filenames -o bashdefault -F _zcpack zcpack\n");
  return out;
}

std::string RenderZshCompletion(const std::vector<CommandDoc>& commands,
                                absl::string_view global_flags) {
  std::string out =
      "#compdef zcpack\n"
      "# zsh completion for zcpack. Generated by `zcpack --completion zsh` from the\n"
      "# tables `zcpack --help` prints.\n"
      "_zcpack() {\n"
      "  local -a commands\n"
      "  commands=(\n";
  for (const CommandDoc& c : commands) {
    absl::StrAppend(&out, "    '", c.name, ":", ZshDescription(FirstLine(c.help)), "'\n");
  }
  absl::StrAppend(&out,
                  "  )\n"
                  "  if (( CURRENT == 2 )); then\n"
                  "    _describe -t commands 'zcpack command' commands\n"
                  "    compadd -- ", global_flags, "\n"
                  "    return\n"
                  "  fi\n"
                  "  local command=$words[2]\n"
                  "  shift words\n"
                  "  (( CURRENT-- ))\n"
                  "  case $command in\n");
  for (const CommandDoc& c : commands) {
    const std::vector<HelpFlagEntry> entries = HelpFlagEntries(c.help);
    absl::StrAppend(&out, "    ", c.name, ")\n      _arguments \\\n");
    auto spec = [&](const FlagDoc& f, absl::string_view spelling) {
      const std::string repeat = f.repeatable ? "*" : "";
      const std::string description = ZshDescription(DescriptionOf(entries, spelling));
      const bool long_form = absl::StartsWith(spelling, "--");
      const std::string action =
          !f.takes_value      ? ""
          : f.choices.empty() ? ":value:_files"
                              : absl::StrCat(":value:(", absl::StrJoin(f.choices, " "), ")");
      return absl::StrCat("        '", repeat, spelling, f.takes_value && long_form ? "=" : "", "[",
                          description, "]", action, "' \\\n");
    };
    for (const FlagDoc& f : c.flags) {
      absl::StrAppend(&out, spec(f, FlagSpelling(f.name)));
      if (!f.short_name.empty()) absl::StrAppend(&out, spec(f, FlagSpelling(f.short_name)));
    }
    absl::StrAppend(&out, "        '(- *)'{-h,--help}'[show this command'\\''s help]' \\\n",
                    "        '*:file:_files'\n      ;;\n");
  }
  absl::StrAppend(&out, "  esac\n}\n_zcpack \"$@\"\n");
  return out;
}

}  // namespace zcpack::cli

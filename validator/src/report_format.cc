// FormatReportText() and FormatReportJson().
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "zcpack/format/dtype.h"
#include "zcpack/format/utf8.h"
#include "zcpack/validator/verify.h"

namespace zcpack::validator {
namespace {

std::string Bytes(uint64_t n) {
  if (n >= (uint64_t{1} << 30)) return absl::StrFormat("%.2f GiB", n / double(uint64_t{1} << 30));
  if (n >= (uint64_t{1} << 20)) return absl::StrFormat("%.2f MiB", n / double(uint64_t{1} << 20));
  if (n >= 1024) return absl::StrFormat("%.1f KiB", n / 1024.0);
  return absl::StrCat(n, " B");
}

const CheckOutcome* FindCheck(const VerifyReport& r, absl::string_view name) {
  for (const CheckOutcome& c : r.checks) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

// What a group looked at, for its summary line.
std::string GroupFacts(const VerifyReport& r, absl::string_view group) {
  if (group == "model") {
    const CheckOutcome* layers = FindCheck(r, "layer_ranges");
    return layers != nullptr && layers->result == CheckResult::kPass ? layers->detail : "";
  }
  if (group == "integrity" && r.integrity_seconds > 0) {
    const uint64_t bytes = r.checksummed_bytes + r.padding_bytes;
    return absl::StrFormat("%s of tensor data hashed, %s of padding scanned, %.2f GB/s",
                           Bytes(r.checksummed_bytes), Bytes(r.padding_bytes),
                           bytes / r.integrity_seconds / 1e9);
  }
  if (group == "source" && !r.comparisons.empty()) {
    return absl::StrCat(r.comparisons.size(), " tensors compared with ", r.against);
  }
  return "";
}

std::string GroupLine(const VerifyReport& r, absl::string_view group) {
  std::vector<std::string> failed;
  size_t ran = 0, skipped = 0;
  std::string skip_reason;
  for (const CheckOutcome& c : r.checks) {
    if (c.group != group) continue;
    if (c.result == CheckResult::kFail) failed.push_back(absl::StrCat(c.name, " (", c.problems, ")"));
    if (c.result == CheckResult::kSkipped) {
      ++skipped;
      if (skip_reason.empty()) skip_reason = c.detail;
    } else {
      ++ran;
    }
  }
  std::string status, summary;
  if (!failed.empty()) {
    status = "FAIL";
    summary = absl::StrJoin(failed, ", ");
  } else if (ran > 0) {
    status = "pass";
    summary = absl::StrCat(ran, ran == 1 ? " check" : " checks");
    if (skipped > 0) absl::StrAppend(&summary, ", ", skipped, " not applicable or not run");
    if (const std::string facts = GroupFacts(r, group); !facts.empty()) {
      absl::StrAppend(&summary, ": ", facts);
    }
  } else {
    status = "skip";
    summary = skip_reason;
  }
  return absl::StrFormat("  %-4s  %-13s %s\n", status, group, summary);
}

std::string AgainstSummary(const VerifyReport& r) {
  const TensorComparison* worst_snr = nullptr;
  const TensorComparison* worst_rmse = nullptr;
  size_t unchanged = 0;
  for (const TensorComparison& c : r.comparisons) {
    if (c.unchanged) {
      ++unchanged;
      continue;
    }
    if (worst_snr == nullptr || !(c.snr_db >= worst_snr->snr_db)) worst_snr = &c;
    if (worst_rmse == nullptr || !(c.rmse <= worst_rmse->rmse)) worst_rmse = &c;
  }
  std::string out = absl::StrFormat(
      "  against %s: %d tensors compared, %d unconverted (byte for byte), %d converted\n",
      r.against, r.comparisons.size(), unchanged, r.comparisons.size() - unchanged);
  if (worst_snr != nullptr) {
    absl::StrAppend(&out, absl::StrFormat("    lowest SNR  %.2f dB  %s (limit %g dB)\n",
                                          worst_snr->snr_db, worst_snr->name, r.min_snr_db));
    absl::StrAppend(&out, absl::StrFormat("    highest RMSE %.4g  %s (limit %g)\n",
                                          worst_rmse->rmse, worst_rmse->name, r.max_rmse));
  }
  return out;
}

}  // namespace

std::string FormatReportText(const VerifyReport& r) {
  std::string out = absl::StrFormat("verify %s: %s", r.path, Bytes(r.file_size));
  const CheckOutcome* table = FindCheck(r, "tensor_limit");
  if (r.tensor_count > 0 || (table != nullptr && table->result == CheckResult::kPass)) {
    absl::StrAppend(&out, ", ", r.tensor_count, " tensors (", Bytes(r.tensor_bytes), ")");
  }
  absl::StrAppend(&out, ", level ", VerifyLevelName(r.level));
  if (r.level == VerifyLevel::kFull || !r.against.empty()) {
    absl::StrAppend(&out, ", ", r.threads, r.threads == 1 ? " thread" : " threads");
  }
  absl::StrAppend(&out, "\n");
  std::vector<std::string> groups;
  for (const CheckOutcome& c : r.checks) {
    if (std::find(groups.begin(), groups.end(), c.group) == groups.end()) groups.push_back(c.group);
  }
  for (const std::string& g : groups) absl::StrAppend(&out, GroupLine(r, g));
  if (!r.comparisons.empty()) absl::StrAppend(&out, AgainstSummary(r));

  if (!r.problems.empty()) {
    absl::StrAppend(&out, "\nproblems");
    if (r.problem_count > r.problems.size()) {
      absl::StrAppend(&out, " (first ", r.problems.size(), " of ", r.problem_count, ")");
    }
    absl::StrAppend(&out, ":\n");
    for (const Problem& p : r.problems) {
      std::vector<std::string> where;
      if (!p.tensor.empty()) where.push_back(absl::StrCat("tensor '", p.tensor, "'"));
      if (p.offset) where.push_back(absl::StrCat("at offset ", *p.offset));
      if (!where.empty()) where.back() += ":";
      where.push_back(p.detail);
      absl::StrAppend(&out, absl::StrFormat("  %-17s %s\n", p.check, absl::StrJoin(where, " ")));
    }
  }
  absl::StrAppend(&out, "\n");
  const std::string took = r.total_seconds < 1
                               ? absl::StrFormat("%.1f ms", r.total_seconds * 1e3)
                               : absl::StrFormat("%.2f s", r.total_seconds);
  if (r.sound()) {
    absl::StrAppend(&out, "SOUND: every check that ran passed, ", took, "\n");
  } else {
    std::vector<std::string> by_check;
    for (const CheckOutcome& c : r.checks) {
      if (c.problems > 0) by_check.push_back(absl::StrCat(c.name, ": ", c.problems));
    }
    absl::StrAppend(&out, absl::StrFormat("UNSOUND: %d problem%s (%s), %s\n", r.problem_count,
                                          r.problem_count == 1 ? "" : "s",
                                          absl::StrJoin(by_check, ", "), took));
  }
  return out;
}

std::string FormatReportJson(const VerifyReport& r) {
  // Keys in the order written here, so that a person reading it sees the
  // verdict first.
  //
  // nlohmann's dump() throws on a string that is not UTF-8; paths are bytes
  // and tensor names and details come from untrusted files, so every such
  // string is escaped (\xNN) on its way in.
  using json = nlohmann::ordered_json;
  const auto text = [](const std::string& s) { return format::EscapeInvalidUtf8(s); };
  json j;
  // Key names follow the --json conventions of every zcpack command
  // (docs/JSON.md): the file read is "input", sizes end in _bytes, times in
  // _ms, a count of things ends in _count.
  j["input"] = text(r.path);
  j["level"] = std::string(VerifyLevelName(r.level));
  j["sound"] = r.sound();
  j["problem_count"] = r.problem_count;
  j["shown_problem_count"] = r.problems.size();
  j["file_bytes"] = r.file_size;
  j["tensor_count"] = r.tensor_count;
  j["tensor_bytes"] = r.tensor_bytes;
  j["checksummed_bytes"] = r.checksummed_bytes;
  j["padding_bytes"] = r.padding_bytes;
  j["threads"] = r.threads;
  j["timings"] = {{"structure_ms", r.structure_seconds * 1e3},
                  {"integrity_ms", r.integrity_seconds * 1e3},
                  {"against_ms", r.against_seconds * 1e3},
                  {"total_ms", r.total_seconds * 1e3}};
  json checks = json::array();
  for (const CheckOutcome& c : r.checks) {
    checks.push_back({{"name", text(c.name)},
                      {"group", text(c.group)},
                      {"description", text(c.description)},
                      {"result", std::string(CheckResultName(c.result))},
                      {"problem_count", c.problems},
                      {"detail", text(c.detail)}});
  }
  j["checks"] = std::move(checks);
  json problems = json::array();
  for (const Problem& p : r.problems) {
    problems.push_back({{"check", text(p.check)},
                        {"tensor", p.tensor.empty() ? json(nullptr) : json(text(p.tensor))},
                        {"offset", p.offset ? json(*p.offset) : json(nullptr)},
                        {"detail", text(p.detail)}});
  }
  j["problems"] = std::move(problems);
  if (r.against.empty()) {
    j["against"] = nullptr;
  } else {
    json tensors = json::array();
    for (const TensorComparison& c : r.comparisons) {
      tensors.push_back({{"name", text(c.name)},
                         {"dtype", std::string(format::DTypeName(c.dtype))},
                         {"source_dtype", std::string(format::DTypeName(c.source_dtype))},
                         {"unchanged", c.unchanged},
                         {"quant_stats",
                          {{"rmse", c.rmse},
                           {"max_abs_error", c.max_abs_error},
                           {"snr_db", c.snr_db}}}});
    }
    // Infinite thresholds (disabled) are written as null.
    j["against"] = {{"source", text(r.against)},
                    {"max_rmse", r.max_rmse},
                    {"min_snr_db", r.min_snr_db},
                    {"tensors", std::move(tensors)}};
  }
  return j.dump(2) + "\n";
}

}  // namespace zcpack::validator

// Verify(): everything `zcpack verify` checks about a container, as a library.
//
// Levels (VerifyLevel):
//   structure  the header, the manifest and the tensor table, in the reader's
//              order (format/SPEC.md, "Reader checks and limits"), then the
//              model checks: hyperparameters, a RoPE layout the runtime can
//              apply, every tensor the model needs present with its shape,
//              forward-pass order, one aligned range per layer. Reads the header and the manifest only (positioned
//              reads, readahead off): milliseconds at any model size.
//   full       structure, plus every tensor's XXH3-64 and the zero fill of
//              every padding byte (padding is not covered by any checksum),
//              computed on several threads while streaming through the file
//              with a bounded buffer per thread.
// With VerifyOptions::against, the source checkpoint (safetensors file or
// folder, or GGUF) is re-read and compared: model hyperparameters, tensor set
// and shapes, bytes of tensors stored unchanged, and each converted tensor's
// quantization error against thresholds and against the statistics recorded
// in the manifest.
//
// The header, manifest, tensor-table and model checks are format's structural
// rules (zcpack/format/structural_rules.h, model_layout.h), the same code the
// reader and the runtime apply. Unlike format::Container::Open(), which stops
// at the first defect, Verify() reports every problem it finds (up to VerifyOptions::max_problems; the rest
// are counted), each naming its check, the tensor and the file offset. Checks
// over the header and the manifest bytes stop at the first failure, since
// later fields cannot be trusted; per-tensor checks, model checks, checksums,
// padding and source comparisons run to the end. When every structural check
// passes, the file is also opened with format::Container::Open() so that a
// container that verifies is one the reader (and so the runtime) accepts.
//
// Results: a returned VerifyReport means the checks ran; report.sound() says
// whether they found nothing. A failed status means they could not run: the
// container or the source cannot be opened or read (OS codes with the path
// and errno text: NotFound, PermissionDenied, ...; FailedPrecondition for a
// path that is not a regular file), or the source checkpoint is itself
// unreadable (the source reader's codes, the message prefixed with the
// source path).
//
// Thread-safety: Verify() keeps no state between calls; concurrent calls are
// fine. It starts and joins its own threads.
#ifndef ZCPACK_VALIDATOR_VERIFY_H_
#define ZCPACK_VALIDATOR_VERIFY_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "zcpack/format/container_reader.h"

namespace zcpack::validator {

enum class VerifyLevel { kStructure, kFull };

// VerifyLevelName(): "structure" or "full".
absl::string_view VerifyLevelName(VerifyLevel level);
// ParseVerifyLevel(): the inverse of VerifyLevelName(); InvalidArgument
// naming the valid levels otherwise.
absl::StatusOr<VerifyLevel> ParseVerifyLevel(absl::string_view name);

// How the full level reads tensor data. All give the same results; they
// differ in speed and memory (tests/benchmarks/validator_benchmark measures
// them). On the 2-core development machine, a warm 3.7 GiB 7B container with
// two threads, first run in a fresh process: kPread 21 GB/s with a 7 MiB
// peak resident set, kMmap 22 GB/s with a resident set as large as the file,
// kMmapPopulate 20 GB/s with 22 MiB (later runs: 22, 22 and 25 GB/s). kPread
// is the default for its bounded memory and its error handling at equal speed.
enum class DataAccess {
  // pread() into one reusable, page-aligned buffer per thread: bounded
  // memory, no page faults, and a read error is a status instead of SIGBUS.
  // The default.
  kPread,
  // One read-only mapping, each range hashed in place: page faults at the
  // kernel's fault-around granularity.
  kMmap,
  // The mapping, with each chunk populated by MADV_POPULATE_READ before it is
  // hashed and released with MADV_DONTNEED afterwards (Linux 5.14+; plain
  // faults where the kernel refuses the advice).
  kMmapPopulate,
};

// Default thresholds for --against, chosen to pass normal conversions of
// realistic weights with a wide margin while failing any container compared
// with weights it was not made from. Measured on `zcpack synth` weights
// (scaled near-normal with outlier channels): q4_0 gives 17-19 dB of SNR per
// tensor, q4_k 20-22 dB, q8_0 (the output head's type) 41-43 dB, and
// weights of another seed about -3 dB. RMSE
// depends on the weights' scale: q4_0 leaves about 0.17 of the weights'
// standard deviation (0.012 on those weights, which have a deviation of
// about 0.07; language models use 0.01-0.05), so 0.1 passes with a margin of
// eight or more; SNR is the scale-free test.
inline constexpr double kDefaultMaxRmse = 0.1;
inline constexpr double kDefaultMinSnrDb = 10.0;

// Where a data pass of Verify() stands: `stage` is "checksums" (the full
// level's hashing and padding scan) or "against" (the source comparison);
// bytes of the container processed of the pass's total; seconds since the
// pass started.
struct VerifyProgress {
  std::string stage;
  uint64_t bytes_done = 0;
  uint64_t bytes_total = 0;
  double seconds = 0;
};

struct VerifyOptions {
  VerifyLevel level = VerifyLevel::kFull;
  // Limits applied to the untrusted header and manifest; an exceeded limit is
  // a problem (check "manifest_limit", "tensor_limit", "name_limit" or
  // "rank_limit"), as the runtime would refuse the file.
  format::ReaderLimits limits;
  // Source checkpoint to compare against; empty for none.
  std::string against;
  // A converted tensor fails "quant_error" when its RMSE against the source
  // is above max_rmse or its SNR is below min_snr_db (NaN fails both).
  // Infinity / -infinity disable a threshold.
  double max_rmse = kDefaultMaxRmse;
  double min_snr_db = kDefaultMinSnrDb;
  // Worker threads for checksums and source comparison; 0: one per
  // available CPU; more than the CPUs is capped (format::ThreadsFor()).
  int threads = 0;
  // Problems kept in the report; further ones are only counted.
  size_t max_problems = 100;
  DataAccess data_access = DataAccess::kPread;
  // Bytes each thread reads or populates at a time (kPread, kMmapPopulate).
  size_t chunk_bytes = size_t{1} << 20;
  // Smoke inference ("smoke_run"): open the container with the runtime and
  // generate this many tokens greedily, every logit finite. 0: not run.
  // Only for files (Verify()), and only when the structure is sound.
  int run_tokens = 0;
  // Called during the data passes, from worker threads but never two calls
  // at once, at most every ~100 ms, and once at the end of each pass. May
  // be empty.
  std::function<void(const VerifyProgress&)> progress;
};

// One defect found.
struct Problem {
  std::string check;                // a name from AllCheckNames()
  std::string tensor;               // empty when not about one tensor
  std::optional<uint64_t> offset;   // file byte offset, when there is one
  std::string detail;               // what is wrong, expected vs actual
};

enum class CheckResult { kPass, kFail, kSkipped };
// CheckResultName(): "pass", "fail" or "skipped".
absl::string_view CheckResultName(CheckResult result);

// The outcome of one check.
struct CheckOutcome {
  std::string name;
  std::string group;        // header, manifest, tensor_table, model, integrity, source
  std::string description;  // what the check verifies
  CheckResult result = CheckResult::kSkipped;
  uint64_t problems = 0;    // problems this check found (all, not just those kept)
  // For kSkipped, why it did not run; otherwise empty or a short summary.
  std::string detail;
};

// --against: one tensor as measured against the source.
struct TensorComparison {
  std::string name;
  format::DType dtype = format::DTYPE_UNSPECIFIED;         // in the container
  format::DType source_dtype = format::DTYPE_UNSPECIFIED;  // in the source
  bool unchanged = false;        // stored as in the source: compared byte for byte
  double rmse = 0;
  double max_abs_error = 0;
  double snr_db = 0;
};

struct VerifyReport {
  std::string path;
  VerifyLevel level = VerifyLevel::kFull;
  std::string against;
  double max_rmse = kDefaultMaxRmse;
  double min_snr_db = kDefaultMinSnrDb;

  // Every check of AllCheckNames(), in that order.
  std::vector<CheckOutcome> checks;
  // The first max_problems problems in the order found: stage by stage
  // (header, manifest, tensor table, model, integrity, source), in file order
  // within a stage. The same input gives the same list at any thread count.
  std::vector<Problem> problems;
  // All problems found; more than problems.size() when some were dropped.
  uint64_t problem_count = 0;

  // What was looked at (zero where the stage did not get that far).
  uint64_t file_size = 0;
  uint64_t tensor_count = 0;
  uint64_t tensor_bytes = 0;      // sum of nbytes over the tensor table
  uint64_t checksummed_bytes = 0; // tensor bytes hashed
  uint64_t padding_bytes = 0;     // padding bytes checked for zero
  int threads = 0;
  std::vector<TensorComparison> comparisons;  // --against, in file order

  double structure_seconds = 0;
  double integrity_seconds = 0;
  double against_seconds = 0;
  double total_seconds = 0;

  bool sound() const { return problem_count == 0; }
};

// AllCheckNames(): every check Verify() can report, in the order it runs them.
std::vector<std::string> AllCheckNames();

// Verify(): verifies the container at `path` (see the file comment).
absl::StatusOr<VerifyReport> Verify(const std::string& path, const VerifyOptions& options = {});

// VerifyBuffer(): the same checks over container bytes already in memory
// (`name` is used in messages; `bytes` must outlive the call).
// options.data_access is ignored.
absl::StatusOr<VerifyReport> VerifyBuffer(std::span<const uint8_t> bytes, std::string name,
                                          const VerifyOptions& options = {});

// FormatReportText(): the report for a person: one line per group of checks,
// the problems, the --against summary and a verdict line.
std::string FormatReportText(const VerifyReport& report);

// FormatReportJson(): the report for a machine (JSON, indented): every check
// with its result and detail, every problem kept, the counts and timings.
std::string FormatReportJson(const VerifyReport& report);

}  // namespace zcpack::validator

#endif  // ZCPACK_VALIDATOR_VERIFY_H_

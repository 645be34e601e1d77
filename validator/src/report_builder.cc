#include "report_builder.h"

#include <cstdio>
#include <cstdlib>
#include <utility>

namespace zcpack::validator::internal {
namespace {

// The names of the header, manifest and tensor-table checks are those of the
// broken-container table (tests/testing/container_fixtures.h): one name per
// rule of format/SPEC.md, "Reader checks and limits".
constexpr CheckInfo kChecks[] = {
    {"magic", "header", "the file starts with the zcpack magic"},
    {"version", "header", "the major format version is 1"},
    {"header_checksum", "header", "the header's XXH3-64 matches its bytes"},
    {"header_size", "header", "the header size field is 128"},
    {"reserved", "header", "reserved header bytes are zero"},
    {"required_features", "header", "no unknown required-feature bits are set"},
    {"header_alignment", "header", "the alignment is 2^12 to 2^21"},
    {"file_size", "header", "the file is exactly as long as the header records"},
    {"data_region", "header", "the data region is aligned and inside the file"},
    {"manifest_bounds", "header", "the manifest follows the data region and ends the file"},
    {"manifest_limit", "header", "the manifest's stored and decoded sizes are within the limits"},
    {"manifest_size", "header", "an uncompressed manifest declares its stored size as decoded size"},
    {"manifest_checksum", "manifest", "the manifest's XXH3-64 matches its bytes"},
    {"zstd_size", "manifest", "the zstd frame declares and decodes to the header's decoded size"},
    {"zstd_frame", "manifest", "a compressed manifest is exactly one zstd frame"},
    {"manifest_parse", "manifest", "the manifest parses as a protobuf Manifest"},
    {"tensor_limit", "tensor_table", "the tensor count is within the limit"},
    {"empty_name", "tensor_table", "every tensor has a name"},
    {"name_limit", "tensor_table", "every name is within the length limit"},
    {"duplicate_name", "tensor_table", "no two tensors share a name"},
    {"dtype", "tensor_table", "every dtype is one of f32, f16, bf16, q4_0, q4_k, q8_0"},
    {"rank_limit", "tensor_table", "every rank is within the limit"},
    {"shape_rank", "tensor_table", "every shape has at least one dimension"},
    {"shape_zero", "tensor_table", "no shape has a zero dimension"},
    {"block_multiple", "tensor_table", "every last dimension is a multiple of the block size"},
    {"shape_overflow", "tensor_table", "every byte size fits in 2^63"},
    {"nbytes", "tensor_table", "every nbytes equals the size its dtype and shape need"},
    {"layout", "tensor_table",
     "every block order is row-major, or row groups on a q4_0/q8_0/q4_k matrix with the feature bit"},
    {"alignment", "tensor_table", "every tensor offset is a multiple of the alignment"},
    {"tensor_bounds", "tensor_table", "every tensor lies inside the data region"},
    {"order", "tensor_table", "tensor offsets strictly increase in manifest order"},
    {"overlap", "tensor_table", "no tensor overlaps the aligned extent of the one before"},
    {"layer_range", "tensor_table", "every layer index is -1 or below the tensor count"},
    {"layer_order", "tensor_table", "layers appear in non-decreasing order"},
    {"layer_contiguity", "tensor_table", "each layer's tensors are one contiguous run"},
    {"layer_outside", "tensor_table", "tensors outside the layers come before or after all layers"},
    {"reader", "tensor_table", "the format library's reader opens the file"},
    {"model_info", "model", "the model's hyperparameters are valid"},
    {"model_tensors", "model", "every tensor the model needs is present with its shape, once"},
    {"access_order", "model", "tensors are stored in the order the forward pass reads them"},
    {"layer_ranges", "model", "each of the model's layers is one aligned byte range"},
    {"checksum", "integrity", "every tensor's data matches its XXH3-64"},
    {"padding", "integrity", "every byte outside the header, tensors and manifest is zero"},
    {"source_model", "source", "the source's hyperparameters equal the container's"},
    {"source_tensors", "source", "the source and the container hold the same tensor names"},
    {"source_shape", "source", "each tensor has the same shape in the source"},
    {"source_data", "source", "tensors stored unconverted equal the source byte for byte"},
    {"quant_error", "source", "each converted tensor's error is within --max-rmse and --min-snr"},
    {"quant_stats", "source", "the manifest's error statistics are those of this source"},
    {"smoke_run", "inference",
     "the runtime opens the container and generates tokens with finite logits"},
};

}  // namespace

std::span<const CheckInfo> AllChecks() { return kChecks; }

ReportBuilder::ReportBuilder(VerifyReport* report, size_t max_problems)
    : report_(report), max_problems_(max_problems), ran_(std::size(kChecks), false) {
  report_->checks.clear();
  for (const CheckInfo& c : kChecks) {
    CheckOutcome outcome;
    outcome.name = std::string(c.name);
    outcome.group = std::string(c.group);
    outcome.description = std::string(c.description);
    outcome.detail = "not reached";
    report_->checks.push_back(std::move(outcome));
  }
}

CheckOutcome& ReportBuilder::Find(absl::string_view check) {
  for (CheckOutcome& c : report_->checks) {
    if (c.name == check) return c;
  }
  // A name missing from kChecks is a bug in this module, caught by its tests.
  std::fprintf(stderr, "zcpack validator: unknown check '%.*s'\n", static_cast<int>(check.size()),
               check.data());
  std::abort();
}

const CheckOutcome& ReportBuilder::Find(absl::string_view check) const {
  return const_cast<ReportBuilder*>(this)->Find(check);
}

void ReportBuilder::Ran(absl::string_view check) {
  CheckOutcome& c = Find(check);
  const size_t index = static_cast<size_t>(&c - report_->checks.data());
  if (!ran_[index]) {
    ran_[index] = true;
    c.detail.clear();
  }
}

void ReportBuilder::RanGroup(absl::string_view group) {
  for (const CheckOutcome& c : report_->checks) {
    if (c.group == group) Ran(c.name);
  }
}

void ReportBuilder::Add(absl::string_view check, std::string tensor, std::optional<uint64_t> offset,
                        std::string detail) {
  Ran(check);
  ++Find(check).problems;
  ++report_->problem_count;
  if (report_->problems.size() < max_problems_) {
    report_->problems.push_back({std::string(check), std::move(tensor), offset, std::move(detail)});
  }
}

void ReportBuilder::Skip(absl::string_view check, absl::string_view reason) {
  CheckOutcome& c = Find(check);
  if (!ran_[static_cast<size_t>(&c - report_->checks.data())]) c.detail = std::string(reason);
}

void ReportBuilder::SkipGroup(absl::string_view group, absl::string_view reason) {
  for (const CheckOutcome& c : report_->checks) {
    if (c.group == group) Skip(c.name, reason);
  }
}

void ReportBuilder::SetDetail(absl::string_view check, std::string detail) {
  Find(check).detail = std::move(detail);
}

uint64_t ReportBuilder::GroupProblems(absl::string_view group) const {
  uint64_t n = 0;
  for (const CheckOutcome& c : report_->checks) {
    if (c.group == group) n += c.problems;
  }
  return n;
}

uint64_t ReportBuilder::CheckProblems(absl::string_view check) const {
  return Find(check).problems;
}

void ReportBuilder::Finish() {
  for (size_t i = 0; i < report_->checks.size(); ++i) {
    CheckOutcome& c = report_->checks[i];
    if (!ran_[i]) {
      c.result = CheckResult::kSkipped;
    } else {
      c.result = c.problems > 0 ? CheckResult::kFail : CheckResult::kPass;
    }
  }
}

}  // namespace zcpack::validator::internal

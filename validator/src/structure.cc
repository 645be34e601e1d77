#include "structure.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "zcpack/format/model_layout.h"

namespace zcpack::validator::internal {
namespace {

// Forwards format's problems into the report, each under its rule's name,
// and never stops the rules.
class ReportSink final : public format::ProblemSink {
 public:
  explicit ReportSink(ReportBuilder& report) : report_(report) {}

  void Ran(absl::string_view check) override { report_.Ran(check); }
  bool Add(format::Problem problem) override {
    std::string detail =
        problem.tensor_index.has_value()
            ? absl::StrCat("tensor #", *problem.tensor_index, ": ", problem.detail)
            : std::move(problem.detail);
    report_.Add(problem.check, std::move(problem.tensor), problem.offset, std::move(detail));
    return true;
  }

 private:
  ReportBuilder& report_;
};

// Every check after `failed` in AllChecks() is not reached; says why.
void StopAfter(ReportBuilder& report, absl::string_view failed) {
  bool after = false;
  const std::string reason = absl::StrCat("not reached: '", failed, "' failed");
  for (const CheckInfo& c : AllChecks()) {
    if (after) report.Skip(c.name, reason);
    if (c.name == failed) after = true;
  }
}

}  // namespace

absl::StatusOr<ContainerLayout> CheckStructure(const ByteSource& source,
                                               const format::ReaderLimits& limits,
                                               ReportBuilder& report) {
  ReportSink sink(report);
  const format::ReadAtFn read = [&source](uint64_t offset, std::span<uint8_t> dst) {
    return source.Read(offset, dst);
  };
  absl::StatusOr<ContainerLayout> layout = format::CheckContainer(read, source.size(), limits, sink);
  if (!layout.ok()) return layout.status();
  if (layout->header_ok && layout->stopped_at != "manifest_checksum" &&
      (layout->header.required_features & format::kFeatureZstdManifest) == 0) {
    report.Skip("zstd_size", "not applicable: the manifest is not compressed");
    report.Skip("zstd_frame", "not applicable: the manifest is not compressed");
  }
  if (!layout->stopped_at.empty()) StopAfter(report, layout->stopped_at);
  return layout;
}

void CheckModel(const ContainerLayout& layout, ReportBuilder& report) {
  if (!layout.table_checked) return;  // the checks keep their "not reached" reason
  ReportSink sink(report);
  const std::string stopped =
      format::CheckModel(layout.manifest, layout.layer_ranges, layout.header.alignment(), sink);
  if (stopped == "model_info") {
    for (absl::string_view check : {"rope", "model_tensors", "access_order", "layer_ranges"}) {
      report.Skip(check, "not run: the model's hyperparameters are invalid");
    }
    return;
  }
  if (stopped == "model_tensors") {
    for (absl::string_view check : {"access_order", "layer_ranges"}) {
      report.Skip(check, "not run: the layer count does not fit the tensor table");
    }
    return;
  }
  const uint32_t layers = layout.manifest.model().num_layers();
  uint64_t layers_found = 0;
  for (uint32_t l = 0; l < layers && l < layout.layer_ranges.size(); ++l) {
    if (layout.layer_ranges[l].size != 0) ++layers_found;
  }
  report.SetDetail("layer_ranges",
                   absl::StrCat(layers_found, " of ", layers, " layers, each one aligned range"));
}

}  // namespace zcpack::validator::internal

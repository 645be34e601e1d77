#include "zcpack/exporter/align_gguf.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <memory>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "zcpack/converter/architecture.h"
#include "zcpack/converter/gguf.h"
#include "zcpack/converter/plan.h"
#include "zcpack/converter/source_model.h"
#include "zcpack/exporter/gguf_writer.h"
#include "zcpack/format/temp_file.h"
#include "zcpack/format/utf8.h"
#include "zcpack/status_macros.h"

namespace zcpack::exporter {
namespace {

constexpr uint64_t kChunkBytes = uint64_t{4} << 20;

}  // namespace

absl::StatusOr<ExportReport> AlignGguf(const AlignGgufOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  if (options.output.empty()) return absl::InvalidArgumentError("-o OUT is required");
  if (absl::Status s = CheckGgufAlignment(options.alignment); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--alignment: ", s.message()));
  }
  ZCPACK_ASSIGN_OR_RETURN(std::unique_ptr<converter::SourceModel> source,
                          converter::OpenSourceModel(options.source));
  const std::string path = format::EscapeInvalidUtf8(options.source);
  const std::span<const uint8_t> bytes =
      source->mappings.empty() ? std::span<const uint8_t>() : source->mappings[0].bytes();
  if (source->mappings.size() != 1 || bytes.size() < 4 ||
      !std::equal(std::begin(converter::kGgufMagic), std::end(converter::kGgufMagic),
                  bytes.begin())) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": not a GGUF file; --to gguf lays out a GGUF file again (convert a checkpoint"
              " to a container, then export it)"));
  }
  ZCPACK_ASSIGN_OR_RETURN(const converter::GgufFile gguf, converter::ParseGguf(bytes, options.source));
  ZCPACK_RETURN_IF_ERROR(converter::CheckTensorsAgainstModel(source->model, source->tensors));
  struct stat out_st, in_st;
  if (::stat(options.output.c_str(), &out_st) == 0 && ::stat(options.source.c_str(), &in_st) == 0 &&
      out_st.st_dev == in_st.st_dev && out_st.st_ino == in_st.st_ino) {
    return absl::AlreadyExistsError(absl::StrCat(format::EscapeInvalidUtf8(options.output),
                                                 ": is the input file; refusing to write over it"));
  }

  // The forward-pass order of a conversion that keeps every tensor as it is.
  converter::PlanOptions plan_options;
  plan_options.keep_source_dtypes = true;
  plan_options.matrix_layout = format::LAYOUT_ROW_MAJOR;
  ZCPACK_ASSIGN_OR_RETURN(const std::vector<converter::PlannedTensor> plan,
                          converter::PlanConversion(*source, plan_options));
  absl::flat_hash_map<absl::string_view, const converter::GgufTensorInfo*> infos;
  for (const converter::GgufTensorInfo& info : gguf.tensors) infos.emplace(info.name, &info);
  std::vector<GgufTensorSpec> specs;
  std::vector<std::span<const uint8_t>> data;
  for (const converter::PlannedTensor& p : plan) {
    const converter::SourceTensor& t = source->tensors[p.source_index];
    const converter::GgufTensorInfo& info = *infos.at(t.name);
    specs.push_back({info.name, info.ggml_type, info.shape, info.nbytes});
    data.push_back(t.data);
  }

  GgufMetadata metadata;
  for (const converter::GgufKeyValue& kv : gguf.metadata) metadata.AddValue(kv.key, kv.value);
  ExportReport report;
  report.output = options.output;
  report.alignment = options.alignment;
  report.tokenizer = "as in the source";
  const std::string output_dir = format::DirName(options.output);
  if (auto removed = format::RemoveStaleTempFiles(output_dir); removed.ok()) {
    for (const std::string& name : *removed) {
      report.notes.push_back(format::EscapeInvalidUtf8(absl::StrCat(
          "removed ", output_dir, "/", name, ", a temporary file left by a writer that is gone")));
    }
  }
  ZCPACK_ASSIGN_OR_RETURN(std::unique_ptr<GgufFileWriter> writer,
                          GgufFileWriter::Create(options.output, std::move(metadata), specs,
                                                 options.alignment, options.overwrite));
  for (size_t k = 0; k < specs.size(); ++k) {
    for (uint64_t begin = 0; begin < data[k].size(); begin += kChunkBytes) {
      ZCPACK_RETURN_IF_ERROR(writer->Append(
          k, data[k].subspan(begin, std::min<uint64_t>(kChunkBytes, data[k].size() - begin))));
    }
    // A source truncated while mapped reads as zeros: never install those.
    ZCPACK_RETURN_IF_ERROR(source->CheckMappings());
    ExportedTensor e;
    e.name = specs[k].name;
    e.source_name = specs[k].name;
    e.ggml_type = std::string(converter::GgmlTypeName(specs[k].ggml_type));
    e.offset = writer->tensor_offset(k);
    e.nbytes = specs[k].nbytes;
    report.tensor_bytes += e.nbytes;
    report.tensors.push_back(std::move(e));
  }
  ZCPACK_RETURN_IF_ERROR(writer->Finish());
  report.output_bytes = writer->file_size();
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace zcpack::exporter

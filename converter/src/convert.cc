#include "zcpack/converter/convert.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "zcpack/converter/architecture.h"
#include "zcpack/converter/plan.h"
#include "zcpack/converter/quantize.h"
#include "zcpack/converter/source_model.h"
#include "zcpack/format/coding.h"
#include "zcpack/format/container_writer.h"
#include "zcpack/format/dtype.h"
#include "zcpack/format/half.h"
#include "zcpack/format/q4_blocks.h"
#include "zcpack/format/row_groups.h"
#include "zcpack/format/status_context.h"
#include "zcpack/format/temp_file.h"
#include "zcpack/format/threads.h"
#include "zcpack/format/utf8.h"
#include "zcpack/status_macros.h"

namespace zcpack::converter {
namespace {

// madvise(MADV_POPULATE_READ), which Linux 5.14 added; older C library
// headers lack the name.
#if defined(MADV_POPULATE_READ)
constexpr int kMadvPopulateRead = MADV_POPULATE_READ;
#else
constexpr int kMadvPopulateRead = 22;
#endif

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string ConverterVersion() { return absl::StrCat("zcpack ", ZCPACK_CONVERTER_VERSION); }

// One unit of work: rows [row_begin, row_end) of planned tensor `tensor`.
struct WorkItem {
  size_t tensor = 0;  // index into the plan
  size_t chunk = 0;   // position among the tensor's chunks
  bool last = false;
  uint64_t row_begin = 0;
  uint64_t row_end = 0;
};

struct TensorJob {
  const SourceTensor* source = nullptr;
  format::DType dtype = format::DTYPE_UNSPECIFIED;
  format::TensorLayout layout = format::LAYOUT_ROW_MAJOR;
  uint64_t row_length = 0;
  uint64_t rows = 0;
  uint64_t source_row_bytes = 0;
  uint64_t output_row_bytes = 0;
  bool converts = false;  // stored values differ from the source's
  // Kept quantized blocks: the mapped file they are read from with pread
  // (ConvertChunk()). nullptr for tensors read through the mapping.
  const MappedFile* kept_file = nullptr;
  // Touched only by the thread whose chunk is next, in chunk order.
  std::optional<format::TensorSink> sink;
  size_t next_chunk = 0;
  QuantErrorAccumulator error;
};

// Encodes n floats as `dtype` (f32, f16, bf16, q4_0, q4_k, q8_0) into dst.
void EncodeFloats(const float* src, size_t n, format::DType dtype, uint8_t* dst) {
  switch (dtype) {
    case format::DTYPE_F32:
      for (size_t i = 0; i < n; ++i) format::EncodeFixed32(dst + 4 * i, std::bit_cast<uint32_t>(src[i]));
      break;
    case format::DTYPE_F16:
      for (size_t i = 0; i < n; ++i) format::EncodeFixed16(dst + 2 * i, format::FloatToHalf(src[i]));
      break;
    case format::DTYPE_BF16:
      for (size_t i = 0; i < n; ++i) format::EncodeFixed16(dst + 2 * i, format::FloatToBFloat16(src[i]));
      break;
    case format::DTYPE_Q4_0:
      QuantizeQ4_0(src, n, dst);
      break;
    case format::DTYPE_Q4_K:
      QuantizeQ4_K(src, n, dst);
      break;
    case format::DTYPE_Q8_0:
      QuantizeQ8_0(src, n, dst);
      break;
    default:
      break;
  }
}

// Per-thread scratch, reused across chunks.
struct Scratch {
  std::vector<float> source;
  std::vector<float> decoded;
  std::vector<uint8_t> output;
  std::vector<uint8_t> grouped;  // the chunk in LAYOUT_ROW_GROUPS_16
  std::vector<uint8_t> read;     // kept blocks, read from the file
};

absl::Status CheckOutputIsNotInput(const std::string& output, const SourceModel& source) {
  struct stat out_st;
  if (::stat(output.c_str(), &out_st) != 0) return absl::OkStatus();
  for (const MappedFile& m : source.mappings) {
    struct stat in_st;
    if (::stat(m.path().c_str(), &in_st) == 0 && in_st.st_dev == out_st.st_dev &&
        in_st.st_ino == out_st.st_ino) {
      return absl::AlreadyExistsError(
          absl::StrCat(output, ": is the input file ", m.path(), "; refusing to write over it"));
    }
  }
  return absl::OkStatus();
}

// NonFiniteError(): names the first non-finite element among `n` floats.
absl::Status NonFiniteError(const TensorJob& job, const WorkItem& item, const float* values,
                            size_t n) {
  const SourceTensor& src = *job.source;
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(values[i])) {
      const uint64_t element = item.row_begin * job.row_length + i;
      return absl::InvalidArgumentError(absl::StrCat(
          src.file, ": tensor '", src.name, "': element ", element, " (row ",
          element / job.row_length, ", column ", element % job.row_length, ") is ", values[i],
          "; pass --allow-nonfinite to convert anyway"));
    }
  }
  return absl::OkStatus();
}

// Converts the rows of one work item. `out` receives the bytes to store:
// scratch.output, or the source bytes themselves when they are stored
// unchanged. The chunk's error statistics go to `partial`.
absl::Status ConvertChunk(const TensorJob& job, const WorkItem& item, bool allow_nonfinite,
                          Scratch& scratch, QuantErrorAccumulator& partial,
                          std::span<const uint8_t>& out) {
  const SourceTensor& src = *job.source;
  const uint64_t rows = item.row_end - item.row_begin;
  const size_t n = static_cast<size_t>(rows * job.row_length);
  const std::span<const uint8_t> src_bytes =
      src.data.subspan(static_cast<size_t>(item.row_begin * job.source_row_bytes),
                       static_cast<size_t>(rows * job.source_row_bytes));
  if (!job.converts && format::IsQuantized(src.dtype)) {
    // Kept blocks: copied byte for byte (reordered later for row groups).
    // Their values were the source's producer's to check. Read with pread
    // into a buffer that stays mapped: a repack touches every source byte
    // once, and on a virtual machine the first touch of each mapped page
    // cost more than the copy (ToRowGroups() of a 1.1 GB q8_0 source: 0.44
    // s through a fresh mapping, 0.15 s through pread, on this project's
    // EPYC VM).
    if (job.kept_file != nullptr) {
      scratch.read.resize(src_bytes.size());
      ZCPACK_RETURN_IF_ERROR(job.kept_file->ReadInto(src_bytes, scratch.read.data()));
      out = scratch.read;
    } else {
      out = src_bytes;
    }
    return absl::OkStatus();
  }
  scratch.output.resize(static_cast<size_t>(rows * job.output_row_bytes));
  if (format::IsQuantized(job.dtype) && !allow_nonfinite && !format::IsQuantized(src.dtype)) {
    // The fast path: convert, quantize, decode and measure span by span.
    // (Blocks being requantized take the general path below, which decodes
    // them first.)
    absl::Status s = QuantizeRows(src.dtype, src_bytes, job.row_length, job.dtype,
                                  scratch.output, &partial);
    if (!s.ok()) {
      scratch.source.resize(n);
      ZCPACK_RETURN_IF_ERROR(
          format::ConvertToFloat(src.dtype, src_bytes.data(), n, scratch.source.data()));
      ZCPACK_RETURN_IF_ERROR(NonFiniteError(job, item, scratch.source.data(), n));
      return absl::InvalidArgumentError(
          absl::StrCat(src.file, ": tensor '", src.name, "': ", s.message()));
    }
    out = scratch.output;
    return absl::OkStatus();
  }
  scratch.source.resize(n);
  ZCPACK_RETURN_IF_ERROR(format::ConvertToFloat(src.dtype, src_bytes.data(), n, scratch.source.data()));
  if (!allow_nonfinite) {
    ZCPACK_RETURN_IF_ERROR(NonFiniteError(job, item, scratch.source.data(), n));
  } else if (format::IsQuantized(job.dtype)) {
    for (float& v : scratch.source) {
      if (!std::isfinite(v)) v = 0.0f;
    }
  }
  if (!job.converts) {
    out = src_bytes;
    return absl::OkStatus();
  }
  EncodeFloats(scratch.source.data(), n, job.dtype, scratch.output.data());
  scratch.decoded.resize(n);
  ZCPACK_RETURN_IF_ERROR(
      format::ConvertToFloat(job.dtype, scratch.output.data(), n, scratch.decoded.data()));
  partial.AddRows(scratch.source.data(), scratch.decoded.data(), n, job.row_length);
  out = scratch.output;
  return absl::OkStatus();
}

// RequantizeWarning(): one line about the quantized source tensors that were
// stored as another dtype ("" when none were): how many, from and to which
// types, and the largest error added, as RMS error relative to the tensor's
// RMS, both measured on the source's decoded values.
std::string RequantizeWarning(const std::vector<TensorJob>& jobs) {
  size_t count = 0;
  std::vector<std::string> conversions;  // "q4_0 to q8_0", each once
  double worst = -1.0;
  double worst_snr = 0.0;
  std::string worst_name;
  for (const TensorJob& job : jobs) {
    const SourceTensor& src = *job.source;
    if (!format::IsQuantized(src.dtype) || !job.converts) continue;
    ++count;
    std::string conversion =
        absl::StrCat(format::DTypeName(src.dtype), " to ", format::DTypeName(job.dtype));
    if (std::find(conversions.begin(), conversions.end(), conversion) == conversions.end()) {
      conversions.push_back(std::move(conversion));
    }
    const double source_energy = job.error.sum_squared_source();
    const double relative = source_energy > 0
                                ? std::sqrt(job.error.sum_squared_error() / source_energy)
                                : (job.error.sum_squared_error() > 0
                                       ? std::numeric_limits<double>::infinity()
                                       : 0.0);
    if (relative > worst) {
      worst = relative;
      worst_snr = job.error.snr_db();
      worst_name = src.name;
    }
  }
  if (count == 0) return "";
  return absl::StrCat(
      "requantized ", count, count == 1 ? " already-quantized tensor (" : " already-quantized tensors (",
      absl::StrJoin(conversions, ", "),
      "): requantizing adds its rounding error on top of the source's; the largest added, "
      "measured against the source's decoded values, is in ", worst_name, ": RMS error ",
      absl::StrFormat("%.3g%%", 100.0 * worst), " of the tensor's RMS (SNR ",
      absl::StrFormat("%.1f", worst_snr), " dB)");
}

}  // namespace

absl::Status CheckConvertOptions(const ConvertOptions& options) {
  if (options.output.empty()) return absl::InvalidArgumentError("no output path given");
  if (options.chunk_bytes == 0) return absl::InvalidArgumentError("chunk_bytes must be positive");
  ZCPACK_RETURN_IF_ERROR(format::CheckAlignment(options.alignment));
  for (const std::string& pattern : options.keep_f16) {
    // Recorded in the manifest's provenance, whose strings must be UTF-8.
    if (!format::IsValidUtf8(pattern)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "keep_f16 pattern '", format::EscapeInvalidUtf8(pattern), "' is not valid UTF-8"));
    }
  }
  PlanOptions plan;
  // The default target depends on the source; check the options as if q4_0.
  plan.quant = options.quant == format::DTYPE_UNSPECIFIED ? format::DTYPE_Q4_0 : options.quant;
  plan.keep_source_dtypes = options.keep_source_dtypes;
  plan.keep_f16 = options.keep_f16;
  plan.output_quant = options.output_quant;
  plan.matrix_layout = options.matrix_layout;
  return CheckPlanOptions(plan);
}

absl::StatusOr<ConvertReport> Convert(const ConvertOptions& options) {
  const auto start = Clock::now();
  ConvertReport report;
  report.output = options.output;
  ZCPACK_RETURN_IF_ERROR(CheckConvertOptions(options));

  ZCPACK_ASSIGN_OR_RETURN(std::unique_ptr<SourceModel> source, OpenSourceModel(options.source));
  if (!options.tokenizer.empty()) {
    ZCPACK_ASSIGN_OR_RETURN(std::unique_ptr<SourceModel> carried,
                            OpenTokenizerSource(options.tokenizer));
    source->tokenizers = std::move(carried->tokenizers);
    for (auto& f : carried->sources) source->sources.push_back(std::move(f));
  }
  ZCPACK_RETURN_IF_ERROR(CheckTensorsAgainstModel(source->model, source->tensors));
  // A tensor the container cannot hold (no elements, rank 0) is the input's
  // problem: name the input file, not the output the writer would name.
  for (const SourceTensor& t : source->tensors) {
    if (absl::StatusOr<uint64_t> bytes = format::TensorByteSize(t.dtype, t.shape); !bytes.ok()) {
      return format::WithTensor(
          format::WithFile(absl::DataLossError(absl::StrCat(
                               format::EscapeInvalidUtf8(t.file), ": tensor '", t.name, "': ",
                               bytes.status().message(), "; a container cannot store it")),
                           t.file),
          t.name);
    }
  }
  ZCPACK_RETURN_IF_ERROR(CheckOutputIsNotInput(options.output, *source));
  for (const auto& m : source->mappings) report.source_files.push_back(m.path());
  for (const std::string& note : source->notes) report.notes.push_back(note);

  PlanOptions plan_options;
  const bool quantized_source =
      std::any_of(source->tensors.begin(), source->tensors.end(),
                  [](const SourceTensor& t) { return format::IsQuantized(t.dtype); });
  plan_options.keep_source_dtypes =
      options.keep_source_dtypes || (options.quant == format::DTYPE_UNSPECIFIED && quantized_source);
  plan_options.quant =
      options.quant == format::DTYPE_UNSPECIFIED ? format::DTYPE_Q4_0 : options.quant;
  plan_options.keep_f16 = options.keep_f16;
  plan_options.output_quant = options.output_quant;
  plan_options.matrix_layout = options.matrix_layout;
  plan_options.requantize = !plan_options.keep_source_dtypes && options.quant != format::DTYPE_UNSPECIFIED;
  absl::StatusOr<std::vector<PlannedTensor>> planned = PlanConversion(*source, plan_options);
  if (!planned.ok()) {
    return absl::Status(planned.status().code(),
                        absl::StrCat(format::EscapeInvalidUtf8(options.source), ": ",
                                     planned.status().message()));
  }
  const std::vector<PlannedTensor> plan = *std::move(planned);

  // Jobs and the container layout.
  std::vector<TensorJob> jobs(plan.size());
  std::vector<format::TensorPlan> layout;
  layout.reserve(plan.size());
  for (size_t i = 0; i < plan.size(); ++i) {
    const SourceTensor& src = source->tensors[plan[i].source_index];
    TensorJob& job = jobs[i];
    job.source = &src;
    job.dtype = plan[i].dtype;
    job.layout = plan[i].layout;
    job.row_length = src.shape.back();
    job.rows = 1;
    for (size_t d = 0; d + 1 < src.shape.size(); ++d) job.rows *= src.shape[d];
    job.source_row_bytes =
        job.row_length / format::BlockElements(src.dtype) * format::BlockBytes(src.dtype);
    job.output_row_bytes =
        job.row_length / format::BlockElements(job.dtype) * format::BlockBytes(job.dtype);
    job.converts = job.dtype != src.dtype;
    if (!job.converts && format::IsQuantized(src.dtype)) {
      for (const MappedFile& m : source->mappings) {
        if (m.Contains(src.data)) job.kept_file = &m;
      }
    }
    layout.push_back({src.name, src.role, src.layer, job.dtype, src.shape, src.dtype, job.layout});
  }
  format::WriterOptions writer_options;
  writer_options.alignment = options.alignment;
  writer_options.overwrite = options.overwrite;
  ZCPACK_ASSIGN_OR_RETURN(std::unique_ptr<format::ContainerWriter> writer,
                          format::ContainerWriter::Create(options.output, layout, writer_options));
  // Temporary files of writers that are gone (killed with SIGKILL, say)
  // would stay forever; the writer removed them (format::TempFile): say so.
  for (const std::string& path : writer->removed_stale_temp_files()) {
    report.notes.push_back(format::StaleTempFileNote(path));
  }
  // The jobs' sinks point into the writer, and `jobs` was declared first, so
  // on an early return it would be destroyed after the writer (a sink's
  // destructor then touched freed memory: a source truncated while mapped
  // corrupted the heap). Close the sinks first on every path.
  const absl::Cleanup close_sinks = [&jobs] {
    for (TensorJob& job : jobs) job.sink.reset();
  };
  report.open_seconds = SecondsSince(start);

  // Work items: whole rows, about chunk_bytes of source each, independent of
  // the thread count; whole 16-row groups for row-grouped tensors, so that
  // each chunk is rearranged on its own (the last chunk ends with the
  // row-major tail of rows % 16 rows).
  std::vector<WorkItem> items;
  uint64_t total_source_bytes = 0;
  for (size_t i = 0; i < jobs.size(); ++i) {
    const TensorJob& job = jobs[i];
    const uint64_t row_multiple =
        job.layout == format::LAYOUT_ROW_GROUPS_16 ? format::kRowGroupRows : 1;
    // Sized by source bytes, but never by fewer than 2 per element: blocks
    // that are requantized are decoded into floats, and their chunks should
    // take no more memory than an f16 source's.
    const uint64_t chunk_row_bytes = std::max<uint64_t>(job.source_row_bytes, 2 * job.row_length);
    const uint64_t rows_per_chunk =
        std::max<uint64_t>(1, options.chunk_bytes / chunk_row_bytes / row_multiple) *
        row_multiple;
    size_t chunk = 0;
    for (uint64_t r = 0; r < job.rows; r += rows_per_chunk, ++chunk) {
      const uint64_t end = std::min(job.rows, r + rows_per_chunk);
      items.push_back({i, chunk, end == job.rows, r, end});
    }
    total_source_bytes += job.source->data.size();
  }

  const int threads = format::ThreadsFor(options.threads);
  report.threads = threads;
  const auto convert_start = Clock::now();
  std::mutex mu;
  std::condition_variable turn;
  absl::Status failure;
  std::atomic<bool> failed{false};
  std::atomic<size_t> next_item{0};
  std::atomic<uint64_t> bytes_done{0};
  std::atomic<uint64_t> tensors_done{0};
  std::atomic<int64_t> last_report_ms{-1000};

  auto fail = [&](absl::Status s) {
    // A source that faulted reads zeros from there on: whatever went wrong
    // after it, that is the cause to report.
    if (absl::Status mapping = source->CheckMappings(); !mapping.ok()) s = std::move(mapping);
    std::lock_guard<std::mutex> lock(mu);
    if (failure.ok()) failure = std::move(s);
    failed = true;
    turn.notify_all();
  };
  auto report_progress = [&](bool final_call) {
    if (!options.progress) return;
    const double elapsed = SecondsSince(convert_start);
    const int64_t ms = static_cast<int64_t>(elapsed * 1000);
    int64_t last = last_report_ms.load();
    if (!final_call && (ms - last < 100 || !last_report_ms.compare_exchange_strong(last, ms))) return;
    options.progress({tensors_done.load(), jobs.size(), bytes_done.load(), total_source_bytes, elapsed});
  };

  // Asks the kernel to read the source bytes of the items ahead of the
  // workers in the background, up to kReadAheadBytes past the item a worker
  // starts: reading runs at the disk's sequential speed while earlier chunks
  // are converted and written, instead of one page fault's readahead at a
  // time. A window in bytes, not items, so that the disk stays busy through
  // the short stalls of workers sharing the cores with other processes.
  // Only a hint.
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<uint64_t> item_start(items.size() + 1, 0);  // source bytes before item k
  for (size_t k = 0; k < items.size(); ++k) {
    const WorkItem& item = items[k];
    item_start[k + 1] = item_start[k] + (item.row_end - item.row_begin) * jobs[item.tensor].source_row_bytes;
  }
  constexpr uint64_t kReadAheadBytes = uint64_t{64} << 20;
  // madvise() over an item's source bytes, widened to whole pages.
  auto advise = [&](const WorkItem& item, int advice) {
    const TensorJob& job = jobs[item.tensor];
    const uint8_t* begin = job.source->data.data() + item.row_begin * job.source_row_bytes;
    const uint8_t* end = job.source->data.data() + item.row_end * job.source_row_bytes;
    const uintptr_t first = reinterpret_cast<uintptr_t>(begin) / page * page;
    (void)::madvise(reinterpret_cast<void*>(first),
                    static_cast<size_t>(reinterpret_cast<uintptr_t>(end) - first), advice);
  };
  std::mutex advise_mu;
  size_t advised = 0;  // items [0, advised) were advised; under advise_mu
  auto read_ahead = [&](size_t k) {
    // One thread advises at a time; another finds the window moving already.
    std::unique_lock<std::mutex> lock(advise_mu, std::try_to_lock);
    if (!lock.owns_lock()) return;
    for (; advised < items.size() && item_start[advised] < item_start[k] + kReadAheadBytes;
         ++advised) {
      advise(items[advised], MADV_WILLNEED);
    }
  };
  if (!items.empty()) read_ahead(0);
  // Maps an item's source pages before it is read through the mapping: in
  // one call for the range (MADV_POPULATE_READ, Linux 5.14) rather than one
  // page fault per 16 pages. (Measured on a repack of a 1.3 GB q8_0 GGUF
  // before kept blocks were read with pread: 0.78 -> 0.69 s warm, sys 0.53
  // -> 0.41 s.) Only a hint: on older kernels the call fails and the pages
  // fault in as before.
  auto populate = [&](const WorkItem& item) {
#if defined(__linux__)
    advise(item, kMadvPopulateRead);
#else
    (void)item;
#endif
  };

  auto worker = [&] {
    Scratch scratch;
    for (size_t k = next_item.fetch_add(1); k < items.size() && !failed; k = next_item.fetch_add(1)) {
      read_ahead(k);
      const WorkItem& item = items[k];
      TensorJob& job = jobs[item.tensor];
      if (job.kept_file == nullptr) populate(item);
      QuantErrorAccumulator partial;
      std::span<const uint8_t> out;
      if (absl::Status s = ConvertChunk(job, item, options.allow_nonfinite, scratch, partial, out);
          !s.ok()) {
        fail(format::WithTensor(format::WithFile(std::move(s), job.source->file), job.source->name));
        return;
      }
      // A source truncated while mapped reads as zeros (format::MappingGuard):
      // stop at the first chunk that saw it rather than write them.
      if (absl::Status s = source->CheckMappings(); !s.ok()) {
        fail(std::move(s));
        return;
      }
      if (job.layout == format::LAYOUT_ROW_GROUPS_16) {
        scratch.grouped.resize(out.size());
        format::ToRowGroups(job.dtype, item.row_end - item.row_begin, job.output_row_bytes,
                            out.data(), scratch.grouped.data());
        out = scratch.grouped;
      }
      {
        std::unique_lock<std::mutex> lock(mu);
        turn.wait(lock, [&] { return failed || job.next_chunk == item.chunk; });
        if (failed) return;
      }
      // This thread owns the tensor's sink until it advances next_chunk.
      absl::Status s;
      if (item.chunk == 0) {
        auto sink = writer->BeginTensor(item.tensor);
        if (sink.ok()) job.sink.emplace(std::move(*sink)); else s = sink.status();
      }
      if (s.ok()) s = job.sink->Append(out);
      if (s.ok()) job.error.Merge(partial);
      if (s.ok() && item.last) {
        s = job.sink->Commit(job.converts ? std::optional<format::QuantStats>(job.error.Stats())
                                          : std::nullopt);
        job.sink.reset();
        tensors_done.fetch_add(1);
      }
      if (!s.ok()) {
        fail(std::move(s));
        return;
      }
      bytes_done.fetch_add((item.row_end - item.row_begin) * job.source_row_bytes);
      {
        std::lock_guard<std::mutex> lock(mu);
        ++job.next_chunk;
      }
      turn.notify_all();
      report_progress(false);
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  if (!failure.ok()) return failure;
  ZCPACK_RETURN_IF_ERROR(source->CheckMappings());
  report_progress(true);
  report.convert_seconds = SecondsSince(convert_start);

  const auto finish_start = Clock::now();
  format::Manifest manifest;
  *manifest.mutable_model() = source->model;
  // Moved, not copied: a GGUF tokenizer blob can be tens of megabytes.
  for (auto& t : source->tokenizers) *manifest.add_tokenizers() = std::move(t);
  format::Provenance* provenance = manifest.mutable_provenance();
  for (const auto& f : source->sources) *provenance->add_sources() = f;
  provenance->set_converter_version(ConverterVersion());
  auto add_option = [&](const std::string& key, const std::string& value) {
    format::KeyValue* kv = provenance->add_options();
    kv->set_key(key);
    kv->set_value(value);
  };
  add_option("quant", plan_options.keep_source_dtypes
                          ? std::string("keep")
                          : std::string(format::DTypeName(plan_options.quant)));
  add_option("alignment", absl::StrCat(options.alignment));
  add_option("keep_f16", absl::StrJoin(options.keep_f16, ","));
  if (options.output_quant != format::DTYPE_UNSPECIFIED) {
    add_option("output_quant", std::string(format::DTypeName(options.output_quant)));
  }
  add_option("allow_nonfinite", options.allow_nonfinite ? "true" : "false");
  add_option("matrix_layout", std::string(format::LayoutName(options.matrix_layout)));
  ZCPACK_RETURN_IF_ERROR(source->CheckMappings());  // tokenizers were read from mappings too
  ZCPACK_RETURN_IF_ERROR(writer->Finish(manifest));
  report.finish_seconds = SecondsSince(finish_start);

  // The report.
  uint64_t tensor_bytes = 0;
  for (size_t i = 0; i < jobs.size(); ++i) {
    const TensorJob& job = jobs[i];
    const format::TensorEntry& entry = writer->planned(i);
    TensorReport t;
    t.name = job.source->name;
    t.role = job.source->role;
    t.layer = job.source->layer;
    t.source_dtype = job.source->dtype;
    t.dtype = job.dtype;
    t.layout = job.layout;
    t.shape = job.source->shape;
    t.offset = entry.offset();
    t.source_bytes = job.source->data.size();
    t.nbytes = entry.nbytes();
    t.has_stats = job.converts;
    if (job.converts) t.stats = job.error.Stats();
    t.fallback_reason = plan[i].fallback_reason;
    const uint64_t elements = job.rows * job.row_length;
    report.weights += elements;
    tensor_bytes += t.nbytes;
    if (format::IsQuantized(t.dtype)) {
      report.quantized_weights += elements;
      report.quantized_bytes += t.nbytes;
    }
    report.source_bytes += t.source_bytes;
    report.tensors.push_back(std::move(t));
  }
  if (std::string warning = RequantizeWarning(jobs); !warning.empty()) {
    report.warnings.push_back(std::move(warning));
  }
  struct stat st;
  if (::stat(options.output.c_str(), &st) == 0) report.output_bytes = static_cast<uint64_t>(st.st_size);
  report.bits_per_weight = report.weights ? 8.0 * tensor_bytes / report.weights : 0.0;
  report.quantized_bits_per_weight =
      report.quantized_weights ? 8.0 * report.quantized_bytes / report.quantized_weights : 0.0;
  report.total_seconds = SecondsSince(start);
  return report;
}

}  // namespace zcpack::converter

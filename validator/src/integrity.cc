#include "integrity.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "xxhash.h"
// Debian's libxxhash on x86-64 also carries XXH3 kernels for AVX2 and AVX-512,
// chosen at run time: the same digests at about twice the SSE2 speed. The
// header maps XXH3_64bits_update() to them.
#if defined(__x86_64__) && __has_include("xxh_x86dispatch.h")
#include "xxh_x86dispatch.h"
#endif
#include "parallel.h"
#include "zcpack/format/format_constants.h"
#include "zcpack/format/structural_rules.h"
#include "zcpack/status_macros.h"

namespace zcpack::validator::internal {
namespace {

// A range of the file to hash (a tensor's data) or to scan for zeros (a
// padding gap).
struct WorkItem {
  uint64_t offset = 0;
  uint64_t length = 0;
  bool padding = false;
  size_t index = 0;  // tensor index (hash) or gap index (padding)
};

// A padding gap: the bytes after tensor `after` (or after the header, or
// before the manifest) up to the next thing in the file.
struct Gap {
  uint64_t offset = 0;
  uint64_t length = 0;
  std::optional<size_t> after;  // the tensor whose padding it is
  // Filled by the scan:
  std::optional<uint64_t> first_nonzero;
  uint64_t nonzero_bytes = 0;
};

// Counts the nonzero bytes of `piece` (at file offset `at`) into `gap`. Zero
// padding is the common case, so 64-byte blocks are tested with one OR first.
void ScanForNonzero(std::span<const uint8_t> piece, uint64_t at, Gap& gap) {
  const uint8_t* p = piece.data();
  const size_t n = piece.size();
  auto count_bytes = [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      if (p[i] != 0) {
        if (!gap.first_nonzero) gap.first_nonzero = at + i;
        ++gap.nonzero_bytes;
      }
    }
  };
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    uint64_t words[8];
    std::memcpy(words, p + i, sizeof(words));
    uint64_t any = 0;
    for (uint64_t w : words) any |= w;
    if (any != 0) count_bytes(i, i + 64);
  }
  count_bytes(i, n);
}

std::string Hex64(uint64_t v) { return absl::StrCat("0x", absl::Hex(v, absl::kZeroPad16)); }

}  // namespace

absl::Status CheckIntegrity(const ByteSource& source, const ContainerLayout& layout, int threads,
                            size_t chunk_bytes, const VerifyOptions& options,
                            ReportBuilder& builder, VerifyReport* report) {
  const auto& tensors = layout.manifest.tensors();
  const size_t count = static_cast<size_t>(tensors.size());
  std::vector<WorkItem> items;
  items.reserve(2 * count + 2);
  for (size_t i = 0; i < count; ++i) {
    if (layout.placed[i]) items.push_back({tensors[i].offset(), tensors[i].nbytes(), false, i});
  }
  // Tokenizer blobs stored out of line (their ranges were checked with the
  // manifest, "tokenizer_bounds") are hashed like tensors, at digest count + b.
  const auto& blobs = layout.manifest.tokenizers();
  for (int b = 0; b < blobs.size(); ++b) {
    if (blobs[b].stored_size() != 0) {
      items.push_back({blobs[b].offset(), blobs[b].stored_size(), false, count + b});
    }
  }
  // Padding is well defined only when every tensor is where the table says.
  std::vector<Gap> gaps;
  const bool scan_padding = layout.table_ok;
  if (scan_padding) {
    for (const format::PaddingGap& gap : format::PaddingGaps(layout.header, layout.manifest)) {
      gaps.push_back({gap.offset, gap.size, gap.after_tensor, std::nullopt, 0});
    }
    for (size_t g = 0; g < gaps.size(); ++g) items.push_back({gaps[g].offset, gaps[g].length, true, g});
  }
  // Largest first, so that no large tensor starts when the others are done.
  std::stable_sort(items.begin(), items.end(),
                   [](const WorkItem& a, const WorkItem& b) { return a.length > b.length; });

  uint64_t pass_bytes = 0;
  for (const WorkItem& item : items) pass_bytes += item.length;
  ByteProgress progress(options.progress, "checksums", pass_bytes);
  std::vector<uint64_t> digests(count + static_cast<size_t>(blobs.size()), 0);
  const auto make_worker = [&]() -> ItemFn {
    auto state = std::shared_ptr<XXH3_state_t>(XXH3_createState(), XXH3_freeState);
    auto scratch = std::make_shared<ScratchBuffer>();
    return [&, state, scratch](size_t k) {
      const WorkItem& item = items[k];
      if (item.padding) {
        Gap& gap = gaps[item.index];
        uint64_t at = item.offset;
        return source.Scan(item.offset, item.length, chunk_bytes, *scratch,
                           [&](std::span<const uint8_t> piece) {
                             ScanForNonzero(piece, at, gap);
                             at += piece.size();
                             progress.Add(piece.size());
                           });
      }
      XXH3_64bits_reset(state.get());
      absl::Status s = source.Scan(item.offset, item.length, chunk_bytes, *scratch,
                                   [&](std::span<const uint8_t> piece) {
                                     XXH3_64bits_update(state.get(), piece.data(), piece.size());
                                     progress.Add(piece.size());
                                   });
      digests[item.index] = XXH3_64bits_digest(state.get());
      return s;
    };
  };
  ZCPACK_RETURN_IF_ERROR(ParallelFor(items.size(), threads, make_worker, &report->threads));
  progress.Finish();

  // Report in file order, from this thread.
  builder.Ran("checksum");
  uint64_t hashed = 0, hashed_tensors = 0;
  for (size_t i = 0; i < count; ++i) {
    if (!layout.placed[i]) continue;
    const format::TensorEntry& t = tensors[i];
    hashed += t.nbytes();
    ++hashed_tensors;
    if (digests[i] != t.xxh3()) {
      builder.Add("checksum", t.name(), t.offset(),
                  absl::StrCat("data [", t.offset(), ", +", t.nbytes(),
                               ") does not match its checksum: stored ", Hex64(t.xxh3()),
                               ", computed ", Hex64(digests[i])));
    }
  }
  int hashed_blobs = 0;
  for (int b = 0; b < blobs.size(); ++b) {
    const format::TokenizerBlob& blob = blobs[b];
    if (blob.stored_size() == 0) continue;
    hashed += blob.stored_size();
    ++hashed_blobs;
    const uint64_t digest = digests[count + static_cast<size_t>(b)];
    if (digest != blob.xxh3()) {
      builder.Add("checksum", "", blob.offset(),
                  absl::StrCat("tokenizer blob ", b, " (", blob.kind(), ") [", blob.offset(),
                               ", +", blob.stored_size(), ") does not match its checksum: stored ",
                               Hex64(blob.xxh3()), ", computed ", Hex64(digest)));
    }
  }
  report->checksummed_bytes = hashed;
  builder.SetDetail("checksum", absl::StrCat(hashed_tensors, " of ", count, " tensors",
                                             hashed_blobs > 0
                                                 ? absl::StrCat(" and ", hashed_blobs,
                                                                " tokenizer blob(s)")
                                                 : std::string(),
                                             ", ", hashed, " bytes hashed"));
  if (!scan_padding) {
    builder.Skip("padding", "not run: the tensor table is unsound");
    return absl::OkStatus();
  }
  builder.Ran("padding");
  uint64_t scanned = 0;
  for (const Gap& gap : gaps) {
    scanned += gap.length;
    if (!gap.first_nonzero) continue;
    const std::string where =
        gap.after ? absl::StrCat("padding after tensor '", tensors[*gap.after].name(), "'")
        : gap.offset == format::kHeaderSize       ? std::string("padding after the header")
        : gap.offset == layout.header.data_offset ? std::string("the data region before any tensor")
                                                  : std::string("padding before the manifest");
    builder.Add("padding", gap.after ? tensors[*gap.after].name() : std::string(),
                *gap.first_nonzero,
                absl::StrCat(where, " [", gap.offset, ", ", gap.offset + gap.length, ") has ",
                             gap.nonzero_bytes, " nonzero byte(s), the first at ",
                             *gap.first_nonzero,
                             "; padding must be zero (no checksum covers it)"));
  }
  report->padding_bytes = scanned;
  builder.SetDetail("padding", absl::StrCat(gaps.size(), " gaps, ", scanned, " bytes scanned"));
  return absl::OkStatus();
}

}  // namespace zcpack::validator::internal

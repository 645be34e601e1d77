#include "tests/testing/container_fixtures.h"

#include <stdlib.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <utility>

#include "absl/strings/str_cat.h"
#include "xxhash.h"
#include "zcpack/format/dtype.h"
#include "zcpack/format/format_constants.h"
#include "zcpack/status_macros.h"
#include "zstd.h"

namespace zcpack::testing {
namespace {

using format::ContainerHeader;
using format::DType;
using format::Manifest;
using format::TensorEntry;

// Fixtures are built before any test runs; a fixture that cannot be built is
// a bug in this file, so it stops the program with the reason.
void CheckOrDie(bool condition, const std::string& what) {
  if (!condition) {
    std::fprintf(stderr, "container_fixtures: %s\n", what.c_str());
    std::abort();
  }
}

uint64_t AlignUp(uint64_t v, uint64_t alignment) { return (v + alignment - 1) / alignment * alignment; }

std::string CompressOrDie(const std::string& raw) {
  std::string out(ZSTD_compressBound(raw.size()), '\0');
  const size_t n = ZSTD_compress(out.data(), out.size(), raw.data(), raw.size(), 3);
  CheckOrDie(!ZSTD_isError(n), "zstd compression failed");
  out.resize(n);
  return out;
}

// A zstd frame that does not record its content size.
std::string CompressWithoutContentSizeOrDie(const std::string& raw) {
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  CheckOrDie(cctx != nullptr, "ZSTD_createCCtx failed");
  CheckOrDie(!ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0)),
             "zstd: cannot drop the content size");
  std::string out(ZSTD_compressBound(raw.size()), '\0');
  const size_t n = ZSTD_compress2(cctx, out.data(), out.size(), raw.data(), raw.size());
  ZSTD_freeCCtx(cctx);
  CheckOrDie(!ZSTD_isError(n), "zstd compression failed");
  out.resize(n);
  CheckOrDie(ZSTD_getFrameContentSize(out.data(), out.size()) == ZSTD_CONTENTSIZE_UNKNOWN,
             "zstd frame still records its size");
  return out;
}

// Adds `delta` to the Frame_Content_Size field of the zstd frame that starts
// `frame` (zstd format, RFC 8878, 3.1.1.1), keeping the field's width.
void AdjustZstdFrameContentSize(std::string& frame, int64_t delta) {
  CheckOrDie(frame.size() > 6, "zstd frame too short");
  const auto descriptor = static_cast<uint8_t>(frame[4]);
  const int fcs_flag = descriptor >> 6;
  const bool single_segment = ((descriptor >> 5) & 1) != 0;
  static constexpr size_t kDictIdBytes[] = {0, 1, 2, 4};
  const size_t pos = 5 + (single_segment ? 0 : 1) + kDictIdBytes[descriptor & 3];
  static constexpr size_t kFcsBytes[] = {0, 2, 4, 8};
  const size_t width = fcs_flag == 0 ? (single_segment ? 1 : 0) : kFcsBytes[fcs_flag];
  CheckOrDie(width > 0 && pos + width <= frame.size(), "zstd frame has no content size");
  uint64_t value = 0;
  for (size_t i = 0; i < width; ++i) value |= uint64_t{static_cast<uint8_t>(frame[pos + i])} << (8 * i);
  // A 2-byte field stores the size minus 256, which a sum does not change.
  value += static_cast<uint64_t>(delta);
  CheckOrDie(width == 8 || value < (uint64_t{1} << (8 * width)), "zstd content size overflows");
  for (size_t i = 0; i < width; ++i) frame[pos + i] = static_cast<char>(value >> (8 * i));
}

struct HandTensor {
  const char* name;
  DType dtype;
  std::vector<uint64_t> shape;
  int32_t layer;
  format::TensorRole role;
};

}  // namespace

std::vector<uint64_t> RandomShape(DType dtype, uint64_t max_elements, std::mt19937_64& rng) {
  const uint64_t block = format::BlockElements(dtype);
  CheckOrDie(block != 0 && max_elements >= block, "RandomShape: bad dtype or budget");
  auto uniform = [&rng](uint64_t lo, uint64_t hi) {
    return std::uniform_int_distribution<uint64_t>(lo, hi)(rng);
  };
  const uint64_t last = block * uniform(1, std::min<uint64_t>(max_elements / block, 64));
  uint64_t remaining = max_elements / last;
  const int rank = static_cast<int>(uniform(1, 3));
  std::vector<uint64_t> shape;
  for (int d = 1; d < rank; ++d) {
    const uint64_t dim = uniform(1, std::max<uint64_t>(1, std::min<uint64_t>(remaining, 16)));
    shape.push_back(dim);
    remaining /= dim;
  }
  shape.push_back(last);
  return shape;
}

std::vector<uint8_t> RandomBytes(size_t n, std::mt19937_64& rng) {
  std::vector<uint8_t> bytes(n);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const uint64_t v = rng();
    for (int b = 0; b < 8; ++b) bytes[i + b] = static_cast<uint8_t>(v >> (8 * b));
  }
  const uint64_t tail = rng();
  for (int b = 0; i < n; ++i, ++b) bytes[i] = static_cast<uint8_t>(tail >> (8 * b));
  return bytes;
}

std::vector<TensorFixture> MakeRandomTensors(uint64_t seed, size_t count, uint64_t max_elements) {
  std::mt19937_64 rng(seed);
  std::vector<TensorFixture> tensors(count);
  for (size_t i = 0; i < count; ++i) {
    format::TensorPlan& plan = tensors[i].plan;
    plan.name = absl::StrCat("t", i);
    plan.dtype = kAllDTypes[i % std::size(kAllDTypes)];
    plan.source_dtype = format::DTYPE_F32;
    plan.shape = RandomShape(plan.dtype, max_elements, rng);
    if (i == 0) {
      plan.layer = -1;
      plan.role = format::ROLE_TOKEN_EMBEDDING;
    } else if (i + 1 == count) {
      plan.layer = -1;
      plan.role = format::ROLE_OUTPUT;
    } else {
      plan.layer = static_cast<int32_t>((i - 1) / 3);
      plan.role = format::ROLE_OTHER;
    }
    const auto nbytes = format::TensorByteSize(plan.dtype, plan.shape);
    CheckOrDie(nbytes.ok(), "RandomShape made an invalid shape");
    tensors[i].bytes = RandomBytes(static_cast<size_t>(*nbytes), rng);
  }
  return tensors;
}

Manifest SmallManifest() {
  Manifest manifest;
  format::ModelInfo* model = manifest.mutable_model();
  model->set_architecture("llama");
  model->set_hidden_size(64);
  model->set_num_layers(2);
  model->set_num_heads(4);
  model->set_num_kv_heads(2);
  model->set_head_dim(16);
  model->set_intermediate_size(172);
  model->set_vocab_size(320);
  model->set_rope_theta(10000.0);
  model->set_rms_norm_eps(1e-5);
  model->set_rope_layout(format::ROPE_LAYOUT_HALF_SPLIT);
  model->set_bos_token_id(1);
  model->set_eos_token_id(2);
  format::Provenance* provenance = manifest.mutable_provenance();
  provenance->set_converter_version("zcpack-tests");
  format::KeyValue* option = provenance->add_options();
  option->set_key("fixture");
  option->set_value("container_fixtures");
  return manifest;
}

absl::Status WriteContainer(const std::string& path, const std::vector<TensorFixture>& tensors,
                            const format::WriterOptions& options, const Manifest& manifest) {
  std::vector<format::TensorPlan> plans;
  plans.reserve(tensors.size());
  for (const TensorFixture& t : tensors) plans.push_back(t.plan);
  ZCPACK_ASSIGN_OR_RETURN(auto writer, format::ContainerWriter::Create(path, std::move(plans), options));
  for (size_t i = 0; i < tensors.size(); ++i) {
    ZCPACK_RETURN_IF_ERROR(writer->WriteTensor(i, tensors[i].bytes));
  }
  return writer->Finish(manifest);
}

absl::StatusOr<std::vector<TensorFixture>> WriteSmallContainer(const std::string& path,
                                                               uint64_t seed,
                                                               const format::WriterOptions& options) {
  std::vector<TensorFixture> tensors = MakeRandomTensors(seed, 2 * std::size(kAllDTypes), 2048);
  ZCPACK_RETURN_IF_ERROR(WriteContainer(path, tensors, options));
  return tensors;
}

absl::StatusOr<std::vector<uint8_t>> ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read failed"));
  return bytes;
}

absl::Status WriteFileBytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return absl::DataLossError(absl::StrCat(path, ": write failed"));
  return absl::OkStatus();
}

ScopedTempDir::ScopedTempDir(const std::string& parent) {
  std::string base = parent;
  for (const char* var : {"TEST_TMPDIR", "TMPDIR"}) {
    if (!base.empty()) break;
    if (const char* value = std::getenv(var); value != nullptr) base = value;
  }
  if (base.empty()) base = "/tmp";
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  std::string templ = base + "/zcpack-test-XXXXXX";
  CheckOrDie(::mkdtemp(templ.data()) != nullptr, "cannot create a temporary folder in " + base);
  path_ = templ;
}

ScopedTempDir::~ScopedTempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::string ScopedTempDir::File(const std::string& name) const { return path_ + "/" + name; }

std::vector<std::string> ScopedTempDir::List() const {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(path_)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

HandMadeContainer ValidHandMadeContainer(uint64_t seed) {
  const std::vector<HandTensor> layout = {
      {"embed", format::DTYPE_F32, {4, 1024}, -1, format::ROLE_TOKEN_EMBEDDING},
      {"blk.0.q", format::DTYPE_Q4_0, {8, 64}, 0, format::ROLE_ATTN_Q},
      {"blk.0.k", format::DTYPE_F16, {4, 32}, 0, format::ROLE_ATTN_K},
      {"blk.1.ffn", format::DTYPE_Q4_K, {2, 256}, 1, format::ROLE_FFN_UP},
  };
  HandMadeContainer parts;
  parts.header.alignment_log2 = format::kMinAlignmentLog2;
  const uint64_t alignment = parts.header.alignment();
  const uint64_t data_offset = alignment;
  std::mt19937_64 rng(seed);
  parts.manifest = SmallManifest();
  uint64_t cursor = data_offset;
  std::vector<std::pair<uint64_t, std::vector<uint8_t>>> blobs;
  for (const HandTensor& t : layout) {
    const auto nbytes = format::TensorByteSize(t.dtype, t.shape);
    CheckOrDie(nbytes.ok(), "hand-made tensor has a bad shape");
    std::vector<uint8_t> bytes = RandomBytes(static_cast<size_t>(*nbytes), rng);
    TensorEntry* e = parts.manifest.add_tensors();
    e->set_name(t.name);
    e->set_role(t.role);
    e->set_layer(t.layer);
    e->set_dtype(t.dtype);
    for (uint64_t d : t.shape) e->add_shape(d);
    e->set_offset(cursor);
    e->set_nbytes(*nbytes);
    e->set_xxh3(XXH3_64bits(bytes.data(), bytes.size()));
    e->set_source_dtype(format::DTYPE_F32);
    blobs.emplace_back(cursor - data_offset, std::move(bytes));
    cursor = AlignUp(cursor + *nbytes, alignment);
  }
  parts.data.assign(cursor - data_offset, 0);
  for (const auto& [at, bytes] : blobs) std::copy(bytes.begin(), bytes.end(), parts.data.begin() + at);
  return parts;
}

HandMadeContainer ManifestBomb(size_t padding) {
  HandMadeContainer parts = ValidHandMadeContainer();
  auto serialized = format::SerializeManifest(parts.manifest, false);
  CheckOrDie(serialized.ok(), "manifest does not serialize");
  std::string raw = *std::move(serialized);
  raw.push_back('\x7a');  // field 15, length-delimited
  for (uint64_t n = padding;; n >>= 7) {
    raw.push_back(static_cast<char>((n & 0x7f) | (n >= 0x80 ? 0x80 : 0)));
    if (n < 0x80) break;
  }
  raw.append(padding, '\0');
  parts.raw_manifest = std::move(raw);
  parts.compress_manifest = true;
  return parts;
}

std::vector<uint8_t> Assemble(const HandMadeContainer& parts) {
  std::string raw;
  if (parts.raw_manifest.has_value()) {
    raw = *parts.raw_manifest;
  } else {
    auto serialized = format::SerializeManifest(parts.manifest, false);
    CheckOrDie(serialized.ok(), "manifest does not serialize");
    raw = *std::move(serialized);
  }
  std::string stored = parts.compress_manifest ? CompressOrDie(raw) : raw;
  if (parts.edit_stored_manifest) parts.edit_stored_manifest(stored);

  ContainerHeader h = parts.header;
  if (parts.compress_manifest) h.required_features |= format::kFeatureZstdManifest;
  const uint64_t data_offset = h.alignment();
  const uint64_t manifest_offset = data_offset + parts.data.size();
  const uint64_t file_size = manifest_offset + stored.size();
  h.data_offset = data_offset;
  h.data_size = parts.data.size();
  h.manifest_offset = manifest_offset;
  h.manifest_size = stored.size();
  h.manifest_raw_size = raw.size();
  h.manifest_xxh3 = XXH3_64bits(stored.data(), stored.size());
  h.file_size = file_size;
  if (parts.edit_header) parts.edit_header(h);

  std::vector<uint8_t> file(file_size, 0);
  format::EncodeHeader(h, std::span<uint8_t, format::kHeaderSize>(file.data(), format::kHeaderSize));
  std::copy(parts.data.begin(), parts.data.end(), file.begin() + static_cast<ptrdiff_t>(data_offset));
  std::copy(stored.begin(), stored.end(), file.begin() + static_cast<ptrdiff_t>(manifest_offset));
  if (parts.edit_file) parts.edit_file(file);
  return file;
}

std::vector<BrokenContainerCase> MakeBrokenContainers() {
  std::vector<BrokenContainerCase> cases;
  // Adds a case: `edit` breaks one rule of a valid hand-made container.
  auto add = [&cases](std::string name, std::string check, absl::StatusCode code,
                      std::string fragment, const std::function<void(HandMadeContainer&)>& edit,
                      format::ReaderLimits limits = {}) {
    HandMadeContainer parts = ValidHandMadeContainer();
    edit(parts);
    cases.push_back({std::move(name), std::move(check), Assemble(parts), code, std::move(fragment),
                     limits});
  };
  auto tensor = [](HandMadeContainer& p, int i) -> TensorEntry& {
    return *p.manifest.mutable_tensors(i);
  };
  using absl::StatusCode;

  // Header, in the reader's order.
  add("bad_magic", "magic", StatusCode::kInvalidArgument, "bad magic",
      [](HandMadeContainer& p) { p.header.magic[1] = 'X'; });
  add("magic_crlf_to_lf", "magic", StatusCode::kInvalidArgument, "bad magic",
      [](HandMadeContainer& p) {  // text-mode transfer turned "\r\n" into "\n"
        p.edit_file = [](std::vector<uint8_t>& f) { f.erase(f.begin() + 4); };
      });
  add("future_major_version", "version", StatusCode::kUnimplemented, "format version 2.",
      [](HandMadeContainer& p) { p.header.major_version = 2; });
  add("major_version_zero", "version", StatusCode::kUnimplemented, "format version 0.",
      [](HandMadeContainer& p) { p.header.major_version = 0; });
  add("header_checksum_mismatch", "header_checksum", StatusCode::kDataLoss,
      "header checksum mismatch", [](HandMadeContainer& p) {
        // An ignored field changed after the checksum: only the checksum sees it.
        p.edit_file = [](std::vector<uint8_t>& f) { f[format::kOffOptionalFeatures] ^= 0x01; };
      });
  add("header_size_field", "header_size", StatusCode::kDataLoss, "header size field",
      [](HandMadeContainer& p) { p.header.header_size = 64; });
  add("nonzero_reserved", "reserved", StatusCode::kDataLoss, "reserved header bytes",
      [](HandMadeContainer& p) { p.header.reserved[7] = 0x40; });
  add("nonzero_reserved0", "reserved", StatusCode::kDataLoss, "reserved header bytes",
      [](HandMadeContainer& p) { p.header.reserved0 = 1; });
  add("unknown_required_feature", "required_features", StatusCode::kUnimplemented,
      "requires unknown features", [](HandMadeContainer& p) {
        p.header.required_features |= uint64_t{1} << 5;
      });
  add("alignment_below_minimum", "header_alignment", StatusCode::kDataLoss, "alignment 2^11",
      [](HandMadeContainer& p) {
        p.edit_header = [](ContainerHeader& h) { h.alignment_log2 = 11; };
      });
  add("truncated_last_byte", "file_size", StatusCode::kDataLoss, "(truncated)",
      [](HandMadeContainer& p) {
        p.edit_file = [](std::vector<uint8_t>& f) { f.pop_back(); };
      });
  add("trailing_bytes", "file_size", StatusCode::kDataLoss, "(trailing bytes)",
      [](HandMadeContainer& p) {
        p.edit_file = [](std::vector<uint8_t>& f) { f.push_back(0); };
      });
  add("data_region_misaligned", "data_region", StatusCode::kDataLoss, "data region",
      [](HandMadeContainer& p) {
        p.edit_header = [](ContainerHeader& h) { h.data_size -= 1; };
      });
  add("manifest_inside_data", "manifest_bounds", StatusCode::kDataLoss, "does not end the file",
      [](HandMadeContainer& p) {
        p.edit_header = [](ContainerHeader& h) { h.manifest_offset -= h.alignment(); };
      });
  {
    // The stored manifest of the valid container, to set limits just below it.
    const HandMadeContainer valid = ValidHandMadeContainer();
    const std::string raw = *format::SerializeManifest(valid.manifest, false);
    format::ReaderLimits stored_limit;
    stored_limit.max_manifest_bytes = raw.size() - 1;
    add("manifest_over_size_limit", "manifest_limit", StatusCode::kResourceExhausted,
        "over the limit of", [](HandMadeContainer&) {}, stored_limit);
    format::ReaderLimits raw_limit;
    raw_limit.max_manifest_raw_bytes = raw.size() - 1;
    add("manifest_over_decoded_size_limit", "manifest_limit", StatusCode::kResourceExhausted,
        "manifest decodes to", [](HandMadeContainer& p) { p.compress_manifest = true; },
        raw_limit);
  }
  // 8 MiB from about 1 KB stored: more than a manifest of four tensors in a
  // 28 KiB data region can be, though within the 1 GiB decoded-size limit.
  add("manifest_decompression_bomb", "manifest_limit", StatusCode::kDataLoss,
      "refused before decoding", [](HandMadeContainer& p) { p = ManifestBomb(size_t{8} << 20); });
  add("uncompressed_size_mismatch", "manifest_size", StatusCode::kDataLoss,
      "declares a decoded size", [](HandMadeContainer& p) {
        p.edit_header = [](ContainerHeader& h) { h.manifest_raw_size += 1; };
      });

  // Manifest bytes.
  add("manifest_checksum_mismatch", "manifest_checksum", StatusCode::kDataLoss,
      "manifest checksum mismatch", [](HandMadeContainer& p) {
        p.edit_file = [](std::vector<uint8_t>& f) { f.back() ^= 0x80; };
      });
  add("zstd_header_size_differs_from_frame", "zstd_size", StatusCode::kDataLoss,
      "zstd manifest frame declares", [](HandMadeContainer& p) {
        p.compress_manifest = true;
        p.edit_header = [](ContainerHeader& h) { h.manifest_raw_size += 1; };
      });
  add("zstd_frame_size_lies", "zstd_size", StatusCode::kDataLoss, "does not decode to",
      [](HandMadeContainer& p) {
        // The frame and the header agree on a size the data does not have.
        p.compress_manifest = true;
        p.edit_stored_manifest = [](std::string& stored) { AdjustZstdFrameContentSize(stored, 1); };
        p.edit_header = [](ContainerHeader& h) { h.manifest_raw_size += 1; };
      });
  add("zstd_not_a_frame", "zstd_size", StatusCode::kDataLoss, "an invalid frame",
      [](HandMadeContainer& p) {
        p.compress_manifest = true;
        p.edit_stored_manifest = [](std::string& stored) { stored[0] ^= 0x01; };  // zstd magic
      });
  add("zstd_frame_without_size", "zstd_size", StatusCode::kDataLoss, "declares no size",
      [](HandMadeContainer& p) {
        p.compress_manifest = true;
        const std::string raw = *format::SerializeManifest(p.manifest, false);
        p.edit_stored_manifest = [raw](std::string& stored) {
          stored = CompressWithoutContentSizeOrDie(raw);
        };
      });
  add("zstd_trailing_skippable_frame", "zstd_frame", StatusCode::kDataLoss,
      "not exactly one frame", [](HandMadeContainer& p) {
        p.compress_manifest = true;
        // A skippable frame (magic 0x184D2A50) of four bytes after the manifest.
        p.edit_stored_manifest = [](std::string& stored) {
          stored.append(std::string("\x50\x2a\x4d\x18\x04\x00\x00\x00junk", 12));
        };
      });
  add("manifest_parse", "manifest_parse", StatusCode::kDataLoss, "does not parse",
      [](HandMadeContainer& p) {
        // Field 1, length-delimited, 127 bytes long, then nothing.
        p.raw_manifest = std::string("\x0a\x7f", 2);
      });
  add("manifest_parse_compressed", "manifest_parse", StatusCode::kDataLoss, "does not parse",
      [](HandMadeContainer& p) {
        p.compress_manifest = true;
        p.raw_manifest = std::string("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11);
      });

  // Tokenizer blobs stored out of line (SPEC.md, "Tokenizer blobs").
  auto blob_at = [](HandMadeContainer& p, uint64_t offset, uint64_t size) {
    format::TokenizerBlob* blob = p.manifest.add_tokenizers();
    blob->set_kind("tokenizer.json");
    blob->set_raw_size(10);
    blob->set_offset(offset);
    blob->set_stored_size(size);
    blob->set_xxh3(1);
  };
  add("tokenizer_in_data_region", "tokenizer_bounds", StatusCode::kDataLoss,
      "starts before", [&](HandMadeContainer& p) { blob_at(p, p.header.alignment(), 64); });
  add("tokenizer_past_manifest", "tokenizer_bounds", StatusCode::kDataLoss,
      "runs past the manifest", [&](HandMadeContainer& p) {
        blob_at(p, p.header.alignment() + p.data.size(), 64);
      });
  add("tokenizer_unaligned", "tokenizer_bounds", StatusCode::kDataLoss,
      "not a multiple of the alignment", [&](HandMadeContainer& p) {
        blob_at(p, p.header.alignment() + p.data.size() + 8, 64);
      });
  add("tokenizer_inline_and_placed", "tokenizer_bounds", StatusCode::kDataLoss,
      "both inline and stored", [&](HandMadeContainer& p) {
        blob_at(p, p.header.alignment() + p.data.size(), 64);
        p.manifest.mutable_tokenizers(0)->set_zstd_data("x");
      });

  // Tensor table, in the order ValidateTensorTable checks it.
  {
    format::ReaderLimits limits;
    limits.max_tensors = 3;
    add("tensor_count_over_limit", "tensor_limit", StatusCode::kResourceExhausted,
        "4 tensors, over the limit of 3", [](HandMadeContainer&) {}, limits);
  }
  add("empty_name", "empty_name", StatusCode::kDataLoss, "empty name",
      [&](HandMadeContainer& p) { tensor(p, 2).clear_name(); });
  {
    format::ReaderLimits limits;
    limits.max_name_bytes = 4;
    add("name_over_limit", "name_limit", StatusCode::kResourceExhausted, "name of 5 bytes",
        [](HandMadeContainer&) {}, limits);
  }
  add("duplicate_name", "duplicate_name", StatusCode::kDataLoss, "duplicate tensor name",
      [&](HandMadeContainer& p) { tensor(p, 2).set_name("blk.0.q"); });
  add("unknown_dtype", "dtype", StatusCode::kDataLoss, "unknown dtype 99",
      [&](HandMadeContainer& p) { tensor(p, 1).set_dtype(static_cast<DType>(99)); });
  {
    format::ReaderLimits limits;
    limits.max_rank = 1;
    add("rank_over_limit", "rank_limit", StatusCode::kResourceExhausted, "rank 2",
        [](HandMadeContainer&) {}, limits);
  }
  add("zero_dimension", "shape_zero", StatusCode::kDataLoss, "zero dimension",
      [&](HandMadeContainer& p) { tensor(p, 2).set_shape(0, 0); });
  add("block_multiple", "block_multiple", StatusCode::kDataLoss, "block size 32",
      [&](HandMadeContainer& p) { tensor(p, 1).set_shape(1, 48); });
  add("shape_overflow", "shape_overflow", StatusCode::kDataLoss, "2^63",
      [&](HandMadeContainer& p) {
        tensor(p, 0).set_shape(0, uint64_t{1} << 32);
        tensor(p, 0).set_shape(1, uint64_t{1} << 32);
      });
  add("nbytes_wrong_for_shape", "nbytes", StatusCode::kDataLoss, "nbytes is 306",
      [&](HandMadeContainer& p) { tensor(p, 1).set_nbytes(tensor(p, 1).nbytes() + 18); });
  // A q4_0 tensor relabelled q8_0: the sizes of the two 32-weight blocks
  // (18 and 34 bytes) must not be confused.
  add("q8_0_with_q4_0_size", "nbytes", StatusCode::kDataLoss,
      "nbytes is 288 but q8_0 [8, 64] needs 544",
      [&](HandMadeContainer& p) { tensor(p, 1).set_dtype(format::DTYPE_Q8_0); });
  // Layouts (format::TensorLayoutProblem()).
  add("row_groups_on_f16", "layout", StatusCode::kDataLoss,
      "needs a q4_0, q8_0 or q4_k tensor, not f16", [&](HandMadeContainer& p) {
        p.header.required_features |= format::kFeatureRowGroups;
        tensor(p, 2).set_layout(format::LAYOUT_ROW_GROUPS_16);
      });
  add("row_groups_on_vector", "layout", StatusCode::kDataLoss, "needs a matrix (rank 2)",
      [&](HandMadeContainer& p) {
        // q4_0 [512] has the bytes of q4_0 [8, 64]: only the rank is wrong.
        p.header.required_features |= format::kFeatureRowGroups;
        tensor(p, 1).clear_shape();
        tensor(p, 1).add_shape(512);
        tensor(p, 1).set_layout(format::LAYOUT_ROW_GROUPS_16);
      });
  add("row_groups_without_feature_bit", "layout", StatusCode::kDataLoss,
      "does not set the row_groups required feature",
      [&](HandMadeContainer& p) { tensor(p, 1).set_layout(format::LAYOUT_ROW_GROUPS_16); });
  add("unknown_layout", "layout", StatusCode::kDataLoss, "unknown layout 7",
      [&](HandMadeContainer& p) {
        p.header.required_features |= format::kFeatureRowGroups;
        tensor(p, 1).set_layout(static_cast<format::TensorLayout>(7));
      });
  add("misaligned_offset", "alignment", StatusCode::kDataLoss, "not a multiple of the alignment",
      [&](HandMadeContainer& p) { tensor(p, 2).set_offset(tensor(p, 2).offset() + 64); });
  add("offset_beyond_end", "tensor_bounds", StatusCode::kDataLoss, "outside the data region",
      [&](HandMadeContainer& p) { tensor(p, 3).set_offset(uint64_t{1} << 40); });
  add("offset_before_data", "tensor_bounds", StatusCode::kDataLoss, "outside the data region",
      [&](HandMadeContainer& p) { tensor(p, 0).set_offset(0); });
  add("tensor_runs_past_data", "tensor_bounds", StatusCode::kDataLoss, "outside the data region",
      [&](HandMadeContainer& p) {
        // Aligned and starting inside the data region, but 16 KiB long in a
        // 4 KiB tail.
        tensor(p, 3).set_dtype(format::DTYPE_F32);
        tensor(p, 3).set_shape(1, 2048);
        tensor(p, 3).set_nbytes(2 * 2048 * 4);
      });
  add("out_of_order", "order", StatusCode::kDataLoss, "file order",
      [&](HandMadeContainer& p) { tensor(p, 2).set_offset(tensor(p, 0).offset()); });
  add("overlapping_tensors", "overlap", StatusCode::kDataLoss, "overlaps the previous tensor",
      [&](HandMadeContainer& p) {
        // "embed" spans four 4 KiB units; put the next tensor in its second.
        tensor(p, 1).set_offset(tensor(p, 0).offset() + 4096);
      });
  add("layer_out_of_range", "layer_range", StatusCode::kDataLoss, "layer index 4 out of range",
      [&](HandMadeContainer& p) { tensor(p, 3).set_layer(4); });
  add("layers_out_of_order", "layer_order", StatusCode::kDataLoss, "layers must be in order",
      [&](HandMadeContainer& p) {
        tensor(p, 1).set_layer(1);
        tensor(p, 2).set_layer(1);
        tensor(p, 3).set_layer(0);
      });
  add("layer_split", "layer_contiguity", StatusCode::kDataLoss, "not one contiguous range",
      [&](HandMadeContainer& p) {
        tensor(p, 2).set_layer(-1);
        tensor(p, 3).set_layer(0);
      });
  add("layer_after_outside_tensor", "layer_outside", StatusCode::kDataLoss,
      "follows a tensor outside the layers", [&](HandMadeContainer& p) {
        // Layer -1 between layers 0 and 1: each layer is still one run, but
        // tensors outside the layers belong before or after all of them.
        tensor(p, 2).set_layer(-1);
      });
  return cases;
}

}  // namespace zcpack::testing

// zcpack container format v1: every on-disk constant, in one place.
//
// The layout these constants describe is drawn in format/SPEC.md. Only the
// format module knows byte offsets; other modules use the reader and writer.
#ifndef ZCPACK_FORMAT_FORMAT_CONSTANTS_H_
#define ZCPACK_FORMAT_FORMAT_CONSTANTS_H_

#include <cstddef>
#include <cstdint>

namespace zcpack::format {

// The first 8 bytes of every container: 0x89 'Z' 'C' 'P' '\r' '\n' 0x1A '\n'.
// Chosen the way PNG chose its signature: the high-bit first byte catches 7-bit
// transports and keeps text tools from calling the file text; "\r\n" and the
// final "\n" catch newline conversion in either direction; 0x1A stops `type` on
// DOS-like systems. Truncation is caught by the file size recorded in the header.
inline constexpr uint8_t kMagic[8] = {0x89, 'Z', 'C', 'P', '\r', '\n', 0x1A, '\n'};
inline constexpr size_t kMagicSize = sizeof(kMagic);

// Versioning: a reader accepts major == kMajorVersion and any minor version.
// Minor versions add optional header fields (in reserved bytes) or manifest
// fields; anything a reader must understand sets a required-feature bit.
inline constexpr uint16_t kMajorVersion = 1;
inline constexpr uint16_t kMinorVersion = 0;

// The fixed header occupies bytes [0, kHeaderSize) of the file.
inline constexpr size_t kHeaderSize = 128;

// Byte offsets of the header fields (all little-endian).
inline constexpr size_t kOffMagic = 0;               // uint8[8]
inline constexpr size_t kOffMajorVersion = 8;        // uint16
inline constexpr size_t kOffMinorVersion = 10;       // uint16
inline constexpr size_t kOffHeaderSize = 12;         // uint32, == kHeaderSize
inline constexpr size_t kOffRequiredFeatures = 16;   // uint64
inline constexpr size_t kOffOptionalFeatures = 24;   // uint64
inline constexpr size_t kOffFileSize = 32;           // uint64
inline constexpr size_t kOffAlignmentLog2 = 40;      // uint32
inline constexpr size_t kOffHeaderReserved0 = 44;    // uint32, zero
inline constexpr size_t kOffDataOffset = 48;         // uint64
inline constexpr size_t kOffDataSize = 56;           // uint64
inline constexpr size_t kOffManifestOffset = 64;     // uint64
inline constexpr size_t kOffManifestSize = 72;       // uint64 (stored bytes)
inline constexpr size_t kOffManifestRawSize = 80;    // uint64 (decoded bytes)
inline constexpr size_t kOffManifestXxh3 = 88;       // uint64
inline constexpr size_t kOffReserved = 96;           // uint8[24], zero
inline constexpr size_t kReservedSize = 24;
inline constexpr size_t kOffHeaderXxh3 = 120;        // uint64 over [0, 120)

static_assert(kOffReserved + kReservedSize == kOffHeaderXxh3);
static_assert(kOffHeaderXxh3 + 8 == kHeaderSize);

// Required-feature bits. A reader rejects a file that sets a bit it does not
// know (absl::StatusCode::kUnimplemented).
inline constexpr uint64_t kFeatureZstdManifest = uint64_t{1} << 0;
// Some tensor is stored in LAYOUT_ROW_GROUPS_16 (a reader that does not know
// the layout would read its blocks in the wrong order).
inline constexpr uint64_t kFeatureRowGroups = uint64_t{1} << 1;
inline constexpr uint64_t kKnownRequiredFeatures = kFeatureZstdManifest | kFeatureRowGroups;
// Optional-feature bits: none are defined in v1; unknown ones are ignored.

// Alignment of every tensor offset and of the data region: a power of two.
inline constexpr uint32_t kMinAlignmentLog2 = 12;      // 4 KiB
inline constexpr uint32_t kMaxAlignmentLog2 = 21;      // 2 MiB
inline constexpr uint32_t kDefaultAlignmentLog2 = 14;  // 16 KiB
inline constexpr uint64_t kDefaultAlignment = uint64_t{1} << kDefaultAlignmentLog2;

// Quantized block geometry, byte-identical to ggml's block_q4_0, block_q4_K,
// block_q8_0, block_q4_1, block_q5_0, block_q5_1, block_q5_K and block_q6_K.
inline constexpr uint64_t kQ4_0BlockElements = 32;
inline constexpr uint64_t kQ4_0BlockBytes = 2 + 16;           // fp16 d, 16 nibble bytes
inline constexpr uint64_t kQ4_KBlockElements = 256;
inline constexpr uint64_t kQ4_KBlockBytes = 2 + 2 + 12 + 128;  // d, dmin, scales, nibbles
inline constexpr uint64_t kQ8_0BlockElements = 32;
inline constexpr uint64_t kQ8_0BlockBytes = 2 + 32;           // fp16 d, 32 int8 codes
inline constexpr uint64_t kQ4_1BlockElements = 32;
inline constexpr uint64_t kQ4_1BlockBytes = 2 + 2 + 16;       // fp16 d, fp16 m, nibbles
inline constexpr uint64_t kQ5_0BlockElements = 32;
inline constexpr uint64_t kQ5_0BlockBytes = 2 + 4 + 16;       // fp16 d, high bits, nibbles
inline constexpr uint64_t kQ5_1BlockElements = 32;
inline constexpr uint64_t kQ5_1BlockBytes = 2 + 2 + 4 + 16;   // d, m, high bits, nibbles
inline constexpr uint64_t kQ5_KBlockElements = 256;
inline constexpr uint64_t kQ5_KBlockBytes = 2 + 2 + 12 + 32 + 128;  // d, dmin, scales, qh, qs
inline constexpr uint64_t kQ6_KBlockElements = 256;
inline constexpr uint64_t kQ6_KBlockBytes = 128 + 64 + 16 + 2;      // ql, qh, scales, d
// LAYOUT_ROW_GROUPS_16: rows per group, and the bytes at the start of a
// block that are interleaved per row as a whole (the fp16 scale of q4_0 and
// q8_0) before the rest of the block, interleaved in 4-byte words.
inline constexpr uint64_t kRowGroupRows = 16;
inline constexpr uint64_t kRowGroupWordBytes = 4;
inline constexpr uint64_t kQ4_0RowGroupPrefixBytes = 2;
inline constexpr uint64_t kQ8_0RowGroupPrefixBytes = 2;
inline constexpr uint64_t kQ4_KRowGroupPrefixBytes = 0;
static_assert((kQ4_0BlockBytes - kQ4_0RowGroupPrefixBytes) % kRowGroupWordBytes == 0);
static_assert((kQ8_0BlockBytes - kQ8_0RowGroupPrefixBytes) % kRowGroupWordBytes == 0);
static_assert((kQ4_KBlockBytes - kQ4_KRowGroupPrefixBytes) % kRowGroupWordBytes == 0);
static_assert(kQ4_0BlockBytes == 18);
static_assert(kQ4_KBlockBytes == 144);
static_assert(kQ8_0BlockBytes == 34);
static_assert(kQ4_1BlockBytes == 20 && kQ5_0BlockBytes == 22 && kQ5_1BlockBytes == 24);
static_assert(kQ5_KBlockBytes == 176 && kQ6_KBlockBytes == 210);
static_assert(kQ8_0BlockBytes == 2 + kQ8_0BlockElements, "one signed byte per weight");

}  // namespace zcpack::format

#endif  // ZCPACK_FORMAT_FORMAT_CONSTANTS_H_

// The fixed 128-byte container header: a plain struct and its explicit
// little-endian encoding. Field meanings: format/SPEC.md, "Header".
#ifndef ZCPACK_FORMAT_HEADER_H_
#define ZCPACK_FORMAT_HEADER_H_

#include <array>
#include <cstdint>
#include <span>

#include "zcpack/format/format_constants.h"

namespace zcpack::format {

struct ContainerHeader {
  std::array<uint8_t, kMagicSize> magic{};
  uint16_t major_version = kMajorVersion;
  uint16_t minor_version = kMinorVersion;
  uint32_t header_size = kHeaderSize;
  uint64_t required_features = 0;
  uint64_t optional_features = 0;
  uint64_t file_size = 0;
  uint32_t alignment_log2 = kDefaultAlignmentLog2;
  uint32_t reserved0 = 0;
  uint64_t data_offset = 0;
  uint64_t data_size = 0;
  uint64_t manifest_offset = 0;
  uint64_t manifest_size = 0;
  uint64_t manifest_raw_size = 0;
  uint64_t manifest_xxh3 = 0;
  std::array<uint8_t, kReservedSize> reserved{};
  uint64_t header_xxh3 = 0;

  uint64_t alignment() const { return uint64_t{1} << alignment_log2; }
};

// A header with the v1 magic, versions and header size, the default
// alignment, and every other field zero.
ContainerHeader NewHeader();

// EncodeHeader(): writes every field of `header` into `out`, little-endian,
// then computes the header checksum over bytes [0, kOffHeaderXxh3) and stores
// it (header.header_xxh3 is ignored). Returns that checksum.
uint64_t EncodeHeader(const ContainerHeader& header, std::span<uint8_t, kHeaderSize> out);

// DecodeHeader(): reads every field as stored; validates nothing.
ContainerHeader DecodeHeader(std::span<const uint8_t, kHeaderSize> bytes);

// HeaderChecksum(): XXH3-64 of bytes [0, kOffHeaderXxh3) of an encoded header.
uint64_t HeaderChecksum(std::span<const uint8_t, kHeaderSize> bytes);

}  // namespace zcpack::format

#endif  // ZCPACK_FORMAT_HEADER_H_

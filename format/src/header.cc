#include "zcpack/format/header.h"

#include <algorithm>

#include "xxhash.h"
#include "zcpack/format/coding.h"

namespace zcpack::format {

ContainerHeader NewHeader() {
  ContainerHeader header;
  std::copy(std::begin(kMagic), std::end(kMagic), header.magic.begin());
  return header;
}

uint64_t HeaderChecksum(std::span<const uint8_t, kHeaderSize> bytes) {
  return XXH3_64bits(bytes.data(), kOffHeaderXxh3);
}

uint64_t EncodeHeader(const ContainerHeader& h, std::span<uint8_t, kHeaderSize> out) {
  uint8_t* p = out.data();
  std::copy(h.magic.begin(), h.magic.end(), p + kOffMagic);
  EncodeFixed16(p + kOffMajorVersion, h.major_version);
  EncodeFixed16(p + kOffMinorVersion, h.minor_version);
  EncodeFixed32(p + kOffHeaderSize, h.header_size);
  EncodeFixed64(p + kOffRequiredFeatures, h.required_features);
  EncodeFixed64(p + kOffOptionalFeatures, h.optional_features);
  EncodeFixed64(p + kOffFileSize, h.file_size);
  EncodeFixed32(p + kOffAlignmentLog2, h.alignment_log2);
  EncodeFixed32(p + kOffHeaderReserved0, h.reserved0);
  EncodeFixed64(p + kOffDataOffset, h.data_offset);
  EncodeFixed64(p + kOffDataSize, h.data_size);
  EncodeFixed64(p + kOffManifestOffset, h.manifest_offset);
  EncodeFixed64(p + kOffManifestSize, h.manifest_size);
  EncodeFixed64(p + kOffManifestRawSize, h.manifest_raw_size);
  EncodeFixed64(p + kOffManifestXxh3, h.manifest_xxh3);
  std::copy(h.reserved.begin(), h.reserved.end(), p + kOffReserved);
  const uint64_t checksum = HeaderChecksum(out);
  EncodeFixed64(p + kOffHeaderXxh3, checksum);
  return checksum;
}

ContainerHeader DecodeHeader(std::span<const uint8_t, kHeaderSize> bytes) {
  const uint8_t* p = bytes.data();
  ContainerHeader h;
  std::copy(p + kOffMagic, p + kOffMagic + kMagicSize, h.magic.begin());
  h.major_version = DecodeFixed16(p + kOffMajorVersion);
  h.minor_version = DecodeFixed16(p + kOffMinorVersion);
  h.header_size = DecodeFixed32(p + kOffHeaderSize);
  h.required_features = DecodeFixed64(p + kOffRequiredFeatures);
  h.optional_features = DecodeFixed64(p + kOffOptionalFeatures);
  h.file_size = DecodeFixed64(p + kOffFileSize);
  h.alignment_log2 = DecodeFixed32(p + kOffAlignmentLog2);
  h.reserved0 = DecodeFixed32(p + kOffHeaderReserved0);
  h.data_offset = DecodeFixed64(p + kOffDataOffset);
  h.data_size = DecodeFixed64(p + kOffDataSize);
  h.manifest_offset = DecodeFixed64(p + kOffManifestOffset);
  h.manifest_size = DecodeFixed64(p + kOffManifestSize);
  h.manifest_raw_size = DecodeFixed64(p + kOffManifestRawSize);
  h.manifest_xxh3 = DecodeFixed64(p + kOffManifestXxh3);
  std::copy(p + kOffReserved, p + kOffReserved + kReservedSize, h.reserved.begin());
  h.header_xxh3 = DecodeFixed64(p + kOffHeaderXxh3);
  return h;
}

}  // namespace zcpack::format

// Explicit little-endian encoding of fixed-width integers, independent of the
// host byte order (shifts, never a struct memcpy).
//
// Decoders do NOT bounds-check: callers pass a pointer to at least N readable
// bytes, having checked the length first (see ByteRangeInBounds()).
#ifndef ZCPACK_FORMAT_CODING_H_
#define ZCPACK_FORMAT_CODING_H_

#include <cstdint>

namespace zcpack::format {

inline void EncodeFixed16(uint8_t* dst, uint16_t v) {
  dst[0] = static_cast<uint8_t>(v);
  dst[1] = static_cast<uint8_t>(v >> 8);
}

inline void EncodeFixed32(uint8_t* dst, uint32_t v) {
  for (int i = 0; i < 4; ++i) dst[i] = static_cast<uint8_t>(v >> (8 * i));
}

inline void EncodeFixed64(uint8_t* dst, uint64_t v) {
  for (int i = 0; i < 8; ++i) dst[i] = static_cast<uint8_t>(v >> (8 * i));
}

inline uint16_t DecodeFixed16(const uint8_t* src) {
  return static_cast<uint16_t>(src[0] | (uint16_t{src[1]} << 8));
}

inline uint32_t DecodeFixed32(const uint8_t* src) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t{src[i]} << (8 * i);
  return v;
}

inline uint64_t DecodeFixed64(const uint8_t* src) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t{src[i]} << (8 * i);
  return v;
}

// ByteRangeInBounds(): true when [offset, offset + length) lies inside
// [0, size). Written so that it cannot overflow for any inputs. Every offset
// and length read from a file passes through this before a pointer is formed.
inline bool ByteRangeInBounds(uint64_t offset, uint64_t length, uint64_t size) {
  return offset <= size && length <= size - offset;
}

}  // namespace zcpack::format

#endif  // ZCPACK_FORMAT_CODING_H_

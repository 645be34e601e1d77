# Q4 quantizer throughput (single thread), per SIMD level.
zcpack_add_benchmark(quantize_benchmark
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/quantize_benchmark.cc
  LIBS zcpack_converter zcpack_format)

# Kernels: thread pool, weight views and the matrix products (scalar, AVX2 and
# AVX-512 code in one library; each SIMD function carries its own target
# attribute, so no file is built for the host CPU).
list(APPEND ZCPACK_RUNTIME_SOURCES
  ${CMAKE_CURRENT_SOURCE_DIR}/src/thread_pool.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/src/kernels.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/src/kernels_avx2.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/src/kernels_avx512.cc)

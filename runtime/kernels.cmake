# Kernels: thread pool, weight views and the matrix products: float kernels
# (scalar, AVX2, AVX-512) and the integer family (scalar, AVX2, AVX-VNNI,
# AVX-512 VNNI) in one library; each SIMD function carries its own target
# attribute, so no file is built for the host CPU).
list(APPEND ZCPACK_RUNTIME_SOURCES
  ${CMAKE_CURRENT_SOURCE_DIR}/src/thread_pool.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/src/kernels.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/src/kernels_avx2.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/src/kernels_avx512.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/src/kernels_int.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/src/kernels_int_avx2.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/src/kernels_int_avx512.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/src/attention_kernels.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/src/attention_kernels_simd.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/src/activation_kernels.cc)

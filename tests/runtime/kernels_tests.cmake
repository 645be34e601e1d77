# Matrix products, weight views and the thread pool.
zcpack_add_gtest(kernels_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/kernels_test.cc
  LIBS zcpack_runtime zcpack_format)
# The integer dot-product family at every instruction set against its scalar
# reference (includes the runtime's internal header).
zcpack_add_gtest(integer_kernels_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integer_kernels_test.cc
  LIBS zcpack_runtime zcpack_format)
# Attention over the binary16 KV cache at every SIMD level.
zcpack_add_gtest(attention_kernels_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/attention_kernels_test.cc
  LIBS zcpack_runtime zcpack_format)
# The SwiGLU activation (ggml's vectorised exponential) at every SIMD level.
zcpack_add_gtest(activation_kernels_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/activation_kernels_test.cc
  LIBS zcpack_runtime zcpack_format)

# Matrix products, weight views and the thread pool.
zcpack_add_gtest(kernels_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/kernels_test.cc
  LIBS zcpack_runtime zcpack_format)

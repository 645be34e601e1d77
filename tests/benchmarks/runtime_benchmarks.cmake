# MatVec throughput over DRAM-resident weights vs. plain read bandwidth.
zcpack_add_benchmark(kernels_benchmark
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/kernels_benchmark.cc
  LIBS zcpack_runtime zcpack_format)

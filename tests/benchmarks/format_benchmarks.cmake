# Format benchmarks: the cost of Container::Open() against tensor count and
# data size.
zcpack_add_benchmark(container_open_benchmark
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/container_open_benchmark.cc
  LIBS zcpack_testing zcpack_format)

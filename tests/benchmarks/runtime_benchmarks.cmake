# MatVec throughput over DRAM-resident weights vs. plain read bandwidth.
zcpack_add_benchmark(kernels_benchmark
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/kernels_benchmark.cc
  LIBS zcpack_runtime zcpack_format)

# Tokenize() throughput on one thread, per vocabulary of tests/data/vocab.
zcpack_add_benchmark(tokenizer_benchmark
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer_benchmark.cc
  LIBS zcpack_runtime zcpack_converter zcpack_format zstd::libzstd_shared)
if(TARGET tokenizer_benchmark)
  target_compile_definitions(tokenizer_benchmark PRIVATE ZCPACK_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
endif()

# zcpack_open() inside one process, and the first tokenizer use after it.
zcpack_add_benchmark(open_benchmark
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/open_benchmark.cc
  LIBS zcpack_runtime zcpack_format)

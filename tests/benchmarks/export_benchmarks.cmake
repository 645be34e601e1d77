# llama.cpp's cold load + first token on an exported GGUF next to the
# original (the page-cache eviction of `zcpack bench`, from zcpack_cli).
zcpack_add_benchmark(gguf_load_benchmark
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/gguf_load_benchmark.cc
  LIBS zcpack_cli)

# Validator benchmark: `zcpack verify` at the structure and full levels on a
# 7B-shaped container (a plain program: it creates its inputs with the zcpack
# binary and measures each configuration in a child process for its peak RSS).
if(ZCPACK_BUILD_BENCHMARKS)
  add_executable(validator_benchmark ${CMAKE_CURRENT_SOURCE_DIR}/validator_benchmark.cc)
  zcpack_target_defaults(validator_benchmark)
  target_include_directories(validator_benchmark PRIVATE ${PROJECT_SOURCE_DIR})
  target_compile_definitions(validator_benchmark PRIVATE ZCPACK_BINARY="$<TARGET_FILE:zcpack>")
  target_link_libraries(validator_benchmark
    PRIVATE zcpack_validator zcpack_format absl::str_format PkgConfig::XXHASH Threads::Threads)
  add_dependencies(validator_benchmark zcpack)
endif()

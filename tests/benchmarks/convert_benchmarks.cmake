# End-to-end conversion benchmark (a plain program: it runs the zcpack binary
# in child processes to measure their peak RSS).
if(ZCPACK_BUILD_BENCHMARKS)
  add_executable(convert_benchmark ${CMAKE_CURRENT_SOURCE_DIR}/convert_benchmark.cc)
  zcpack_target_defaults(convert_benchmark)
  target_include_directories(convert_benchmark PRIVATE ${PROJECT_SOURCE_DIR})
  target_compile_definitions(convert_benchmark PRIVATE ZCPACK_BINARY="$<TARGET_FILE:zcpack>")
  target_link_libraries(convert_benchmark PRIVATE zcpack_converter zcpack_format absl::strings absl::str_format)
  add_dependencies(convert_benchmark zcpack)
endif()

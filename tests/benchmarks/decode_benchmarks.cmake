# Runtime open time and decode speed against the memory-bandwidth bound
# (a plain program; it prints numbers).
if(ZCPACK_BUILD_BENCHMARKS)
  add_executable(decode_benchmark ${CMAKE_CURRENT_SOURCE_DIR}/decode_benchmark.cc)
  zcpack_target_defaults(decode_benchmark)
  target_include_directories(decode_benchmark PRIVATE ${PROJECT_SOURCE_DIR})
  target_link_libraries(decode_benchmark PRIVATE zcpack_runtime zcpack_format absl::strings
                        absl::str_format Threads::Threads)
endif()
# First-step logits against llama.cpp's (llama_greedy's logits0.bin): cosine,
# largest difference, argmax (a plain program; it prints numbers).
if(ZCPACK_BUILD_BENCHMARKS)
  add_executable(first_logits ${CMAKE_CURRENT_SOURCE_DIR}/first_logits.cc)
  zcpack_target_defaults(first_logits)
  target_include_directories(first_logits PRIVATE ${PROJECT_SOURCE_DIR})
  target_link_libraries(first_logits PRIVATE zcpack_runtime zcpack_format absl::strings)
endif()

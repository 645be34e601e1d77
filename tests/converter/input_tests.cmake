# Tests of the converter's input side: safetensors and GGUF readers, config
# and tensor-name mapping, SourceModel.
#
# zcpack_input_testing: the GGUF and safetensors test writers, free of
# GoogleTest, shared with the input fuzzers' seed generators and with later
# end-to-end tests.
add_library(zcpack_input_testing STATIC gguf_test_writer.cc safetensors_test_writer.cc)
zcpack_target_defaults(zcpack_input_testing)
target_include_directories(zcpack_input_testing PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(zcpack_input_testing
  PUBLIC zcpack_converter zcpack_format zcpack_testing
  PRIVATE nlohmann_json::nlohmann_json absl::str_format)

zcpack_add_gtest(zcpack_input_tests
  SOURCES
    allocation_counter.cc
    architecture_test.cc
    gguf_test.cc
    safetensors_test.cc
    source_model_test.cc
  LIBS zcpack_input_testing zcpack_testing zcpack_converter zcpack_format zstd::libzstd_shared)

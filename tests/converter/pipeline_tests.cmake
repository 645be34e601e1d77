# Tests of the conversion pipeline (planner, Convert()) through the library.
zcpack_add_gtest(zcpack_pipeline_tests
  SOURCES pipeline_test.cc
  LIBS zcpack_input_testing zcpack_testing zcpack_converter zcpack_format)

# Converting already-quantized GGUF: kept block bytes, refusals.
zcpack_add_gtest(zcpack_repack_tests
  SOURCES repack_test.cc
  LIBS zcpack_input_testing zcpack_testing zcpack_converter zcpack_format)

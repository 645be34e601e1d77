# Q4 block decoders, quantizers and error statistics.
zcpack_add_gtest(quantize_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/quantize_test.cc
  LIBS zcpack_converter zcpack_format)
# The in-test reference quantizers must round exactly as written (no fused
# multiply-add), like the library's kernels.
set_source_files_properties(${CMAKE_CURRENT_SOURCE_DIR}/quantize_test.cc
  PROPERTIES COMPILE_OPTIONS "-ffp-contract=off")

# Q4 quantizers: converter/src/quantize*.cc.
#
# Every quantization kernel must run the same IEEE operations on every path
# (scalar, AVX2, AVX-512) so that output bytes do not depend on the CPU; hence
# -ffp-contract=off, which stops the compiler from fusing a multiply and an
# add on one path and not on another. The SIMD kernels pick their instruction
# sets per file with `#pragma GCC target` and run only after a CPU check:
# nothing is built with -march.
set(ZCPACK_QUANTIZE_SOURCES
  ${CMAKE_CURRENT_SOURCE_DIR}/src/quantize.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/src/quantize_scalar.cc)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  list(APPEND ZCPACK_QUANTIZE_SOURCES
    ${CMAKE_CURRENT_SOURCE_DIR}/src/quantize_avx2.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/src/quantize_avx512.cc)
endif()
set_source_files_properties(${ZCPACK_QUANTIZE_SOURCES} PROPERTIES COMPILE_OPTIONS "-ffp-contract=off")
list(APPEND ZCPACK_CONVERTER_SOURCES ${ZCPACK_QUANTIZE_SOURCES})

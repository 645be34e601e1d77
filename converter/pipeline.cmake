# The conversion pipeline and synthetic models (owned by the pipeline area).
list(APPEND ZCPACK_CONVERTER_SOURCES
  ${CMAKE_CURRENT_SOURCE_DIR}/src/convert.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/src/plan.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/src/synth.cc)

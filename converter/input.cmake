# converter input side: safetensors and GGUF readers, Hugging Face config and
# tensor-name mapping, and the SourceModel the pipeline reads.
list(APPEND ZCPACK_CONVERTER_SOURCES
  ${CMAKE_CURRENT_SOURCE_DIR}/src/architecture.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/src/gguf.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/src/safetensors.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/src/source_model.cc)

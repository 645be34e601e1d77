# The runtime core: model open and memory policy, prefetch, the forward pass,
# sampling and generation, the tokenizers.

# Model::tokenizer() reads tokenizer.json / tokenizer.model blobs when the
# runtime has their loaders (src/tokenizer_hf.cc), as `zcpack tokenize` does.
if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/src/tokenizer_hf.cc)
  set_source_files_properties(${CMAKE_CURRENT_SOURCE_DIR}/src/model.cc
    PROPERTIES COMPILE_DEFINITIONS ZCPACK_HAVE_HF_TOKENIZER=1)
endif()
list(APPEND ZCPACK_RUNTIME_SOURCES
  ${CMAKE_CURRENT_SOURCE_DIR}/src/c_api.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/src/chat_template.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/src/loaders.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/src/model.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/src/prefetcher.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/src/session.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/src/tokenizer.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/src/tokenizer_gguf.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/src/tokenizer_pretokenizer.cc)

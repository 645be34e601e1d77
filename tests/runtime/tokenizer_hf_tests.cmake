# The Hugging Face tokenizer loaders (tokenizer.json, tokenizer.model), fed
# files written from the GGUF vocabularies in tests/data/vocab (copied from
# llama.cpp). zcpack_hf_tokenizer_testing writes those files; the tokenizer
# fuzz target's seed generator uses it too, so it is built whenever tests or
# fuzzers are.
add_library(zcpack_hf_tokenizer_testing STATIC hf_tokenizer_files.cc)
zcpack_target_defaults(zcpack_hf_tokenizer_testing)
# The SentencePiece ModelProto classes are generated into the runtime's
# build folder (runtime/core.cmake).
target_include_directories(zcpack_hf_tokenizer_testing PUBLIC
  ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR}/runtime/generated)
target_link_libraries(zcpack_hf_tokenizer_testing
  PUBLIC zcpack_runtime zcpack_format
  PRIVATE nlohmann_json::nlohmann_json absl::flat_hash_map)

zcpack_add_gtest(zcpack_tokenizer_hf_tests
  SOURCES tokenizer_hf_test.cc
  LIBS zcpack_hf_tokenizer_testing zcpack_runtime zcpack_converter zcpack_format
       nlohmann_json::nlohmann_json)
if(TARGET zcpack_tokenizer_hf_tests)
  target_compile_definitions(zcpack_tokenizer_hf_tests PRIVATE
    ZCPACK_VOCAB_DIR="${PROJECT_SOURCE_DIR}/tests/data/vocab")
endif()

# Tests of the runtime core: open and memory policy, the forward pass against
# an independent reference, GGUF-vs-safetensors RoPE layouts, determinism,
# sampling.
zcpack_add_gtest(zcpack_runtime_tests
  SOURCES c_api_test.cc chat_template_test.cc forward_test.cc loaders_test.cc memory_plan_test.cc
          memory_budget_test.cc model_test.cc
  LIBS zcpack_runtime zcpack_converter zcpack_input_testing zcpack_testing zcpack_format
       nlohmann_json::nlohmann_json)

# The tokenizers against llama.cpp's own cases (tests/data/vocab holds the
# vocabulary-only GGUF files and their .inp/.out pairs, copied from llama.cpp).
zcpack_add_gtest(zcpack_tokenizer_tests
  SOURCES tokenizer_test.cc
  LIBS zcpack_runtime zcpack_converter zcpack_format nlohmann_json::nlohmann_json
       zstd::libzstd_shared)
if(TARGET zcpack_tokenizer_tests)
  target_compile_definitions(zcpack_tokenizer_tests PRIVATE
    ZCPACK_VOCAB_DIR="${PROJECT_SOURCE_DIR}/tests/data/vocab")
endif()

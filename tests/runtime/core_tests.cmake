# Tests of the runtime core: open and memory policy, the forward pass against
# an independent reference, GGUF-vs-safetensors RoPE layouts, determinism,
# sampling.
zcpack_add_gtest(zcpack_runtime_tests
  SOURCES c_api_test.cc chat_template_test.cc forward_test.cc loaders_test.cc model_test.cc
  LIBS zcpack_runtime zcpack_converter zcpack_input_testing zcpack_testing zcpack_format
       nlohmann_json::nlohmann_json)

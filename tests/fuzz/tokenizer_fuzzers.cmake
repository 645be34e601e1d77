# Fuzz target for the tokenizer: vocabulary metadata (GGUF tokenizer.* keys
# as JSON) and text, both untrusted.
zcpack_add_fuzzer(zcpack_tokenizer_fuzzer
  SOURCE tokenizer_fuzzer.cc
  SEEDGEN tokenizer_seeds.cc
  LIBS zcpack_runtime zcpack_format nlohmann_json::nlohmann_json)

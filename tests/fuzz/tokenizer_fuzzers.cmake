# Fuzz target for tokenizing text: vocabulary metadata (GGUF tokenizer.* keys
# as JSON) and longer texts, both untrusted, through Tokenize, Detokenize and
# DetokenizeStream. (tokenizer_fuzzer, runtime_fuzzers.cmake, covers every
# loader.)
zcpack_add_fuzzer(zcpack_tokenizer_text_fuzzer
  SOURCE tokenizer_text_fuzzer.cc
  SEEDGEN tokenizer_text_seeds.cc
  LIBS zcpack_runtime zcpack_format nlohmann_json::nlohmann_json)

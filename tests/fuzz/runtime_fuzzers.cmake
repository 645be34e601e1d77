# Fuzz targets for the runtime's readers of untrusted bytes. The tokenizer
# seeds are written with the Hugging Face file writer the tokenizer tests use
# (tests/runtime, zcpack_hf_tokenizer_testing).
zcpack_add_fuzzer(zcpack_tokenizer_fuzzer
  SOURCE tokenizer_fuzzer.cc
  SEEDGEN tokenizer_seeds.cc
  LIBS zcpack_hf_tokenizer_testing zcpack_runtime zcpack_format nlohmann_json::nlohmann_json)

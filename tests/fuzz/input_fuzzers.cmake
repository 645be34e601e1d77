# Fuzz targets for the converter's input readers (untrusted model files).
# The seed generators use the test writers in tests/converter
# (zcpack_input_testing) to write valid files.
zcpack_add_fuzzer(zcpack_safetensors_fuzzer
  SOURCE safetensors_fuzzer.cc
  SEEDGEN safetensors_seeds.cc
  LIBS zcpack_input_testing zcpack_converter zcpack_format)
zcpack_add_fuzzer(zcpack_gguf_fuzzer
  SOURCE gguf_fuzzer.cc
  SEEDGEN gguf_seeds.cc
  LIBS zcpack_input_testing zcpack_exporter zcpack_converter zcpack_format)

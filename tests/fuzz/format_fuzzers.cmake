# Fuzz targets for the format module's readers of untrusted bytes.
zcpack_add_fuzzer(container_reader_fuzzer
  SOURCE container_reader_fuzzer.cc
  SEEDGEN container_reader_seeds.cc
  LIBS zcpack_format zcpack_testing PkgConfig::XXHASH)

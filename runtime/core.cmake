# The runtime core: model open and memory policy, prefetch, the forward pass,
# sampling and generation, the tokenizers.

list(APPEND ZCPACK_RUNTIME_SOURCES
  ${CMAKE_CURRENT_SOURCE_DIR}/src/c_api.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/src/chat_template.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/src/loaders.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/src/memory_plan.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/src/model.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/src/prefetcher.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/src/weight_streamer.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/src/session.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/src/tokenizer.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/src/tokenizer_gguf.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/src/tokenizer_pretokenizer.cc)

# Tokenizers from Hugging Face files (tokenizer.json, tokenizer.model). The
# SentencePiece ModelProto classes are generated here, as format/ generates
# the manifest's; they are private to the runtime (no public header names them).
set(ZCPACK_RUNTIME_PROTO_DIR ${CMAKE_CURRENT_SOURCE_DIR}/proto)
set(ZCPACK_RUNTIME_PROTO_OUT ${CMAKE_CURRENT_BINARY_DIR}/generated)
file(MAKE_DIRECTORY ${ZCPACK_RUNTIME_PROTO_OUT}/zcpack/runtime)
add_custom_command(
  OUTPUT ${ZCPACK_RUNTIME_PROTO_OUT}/zcpack/runtime/sentencepiece_model.pb.cc
         ${ZCPACK_RUNTIME_PROTO_OUT}/zcpack/runtime/sentencepiece_model.pb.h
  COMMAND protobuf::protoc --cpp_out=${ZCPACK_RUNTIME_PROTO_OUT} -I ${ZCPACK_RUNTIME_PROTO_DIR}
          ${ZCPACK_RUNTIME_PROTO_DIR}/zcpack/runtime/sentencepiece_model.proto
  DEPENDS ${ZCPACK_RUNTIME_PROTO_DIR}/zcpack/runtime/sentencepiece_model.proto
  COMMENT "protoc sentencepiece_model.proto")
# Generated protobuf code is not ours to lint.
set_source_files_properties(${ZCPACK_RUNTIME_PROTO_OUT}/zcpack/runtime/sentencepiece_model.pb.cc
  PROPERTIES COMPILE_OPTIONS "-w")
list(APPEND ZCPACK_RUNTIME_SOURCES
  ${ZCPACK_RUNTIME_PROTO_OUT}/zcpack/runtime/sentencepiece_model.pb.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/src/tokenizer_hf.cc)
list(APPEND ZCPACK_RUNTIME_PRIVATE_INCLUDES ${ZCPACK_RUNTIME_PROTO_OUT})

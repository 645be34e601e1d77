# zcpack_add_model(NAME SOURCE <src> OUTPUT <out> [QUANT q4_0|q4_k|q8_0|f16|f32]
#                  [ALIGNMENT <bytes>])
#
# A build step that converts a model (a .safetensors file, a Hugging Face model
# folder, or a .gguf file) into a zcpack container with `zcpack convert`, then
# gates it with `zcpack verify` (full checksums): a container that does not
# verify fails the build and is removed. Target NAME (built by default)
# depends on OUTPUT. The step reruns only when a source file, the options or
# the zcpack program change.
#
# The zcpack program is zcpack::zcpack (imported by find_package(zcpack), or
# the in-tree target when used inside the zcpack build).
set(_ZCPACK_ADD_MODEL_DIR "${CMAKE_CURRENT_LIST_DIR}")

function(zcpack_add_model name)
  cmake_parse_arguments(ARG "" "SOURCE;OUTPUT;QUANT;ALIGNMENT" "" ${ARGN})
  if(NOT ARG_SOURCE OR NOT ARG_OUTPUT)
    message(FATAL_ERROR "zcpack_add_model(${name}): SOURCE and OUTPUT are required")
  endif()
  if(NOT ARG_QUANT)
    set(ARG_QUANT q4_0)
  endif()
  if(NOT ARG_ALIGNMENT)
    set(ARG_ALIGNMENT 16384)
  endif()
  if(TARGET zcpack::zcpack)
    set(program zcpack::zcpack)
  elseif(TARGET zcpack)
    set(program zcpack)
  else()
    message(FATAL_ERROR "zcpack_add_model(${name}): no zcpack program target")
  endif()
  get_filename_component(source "${ARG_SOURCE}" ABSOLUTE)
  get_filename_component(output "${ARG_OUTPUT}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_BINARY_DIR}")
  if(IS_DIRECTORY "${source}")
    file(GLOB inputs CONFIGURE_DEPENDS
      "${source}/*.safetensors" "${source}/*.json" "${source}/tokenizer.model")
  else()
    set(inputs "${source}")
  endif()
  # The options live in a file that changes only when they do, so that a
  # changed option reruns the step with any generator.
  set(options_file "${CMAKE_CURRENT_BINARY_DIR}/${name}.zcpack-options")
  file(CONFIGURE OUTPUT "${options_file}"
    CONTENT "source=${source}\nquant=${ARG_QUANT}\nalignment=${ARG_ALIGNMENT}\n")
  add_custom_command(
    OUTPUT "${output}"
    COMMAND ${program} convert "${source}" -o "${output}" --quant ${ARG_QUANT}
            --alignment ${ARG_ALIGNMENT} --force --quiet
    COMMAND ${CMAKE_COMMAND} -DZCPACK=$<TARGET_FILE:${program}> -DCONTAINER=${output}
            -P "${_ZCPACK_ADD_MODEL_DIR}/ZcpackVerifyOrRemove.cmake"
    DEPENDS ${inputs} "${options_file}" ${program}
    COMMENT "zcpack: converting and verifying ${name} (${ARG_QUANT})"
    VERBATIM)
  add_custom_target(${name} ALL DEPENDS "${output}")
endfunction()

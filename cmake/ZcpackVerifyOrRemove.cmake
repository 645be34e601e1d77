# cmake -DZCPACK=<program> -DCONTAINER=<file> -P ZcpackVerifyOrRemove.cmake
# Runs `zcpack verify CONTAINER`; when it fails, removes the container so that
# a build never leaves an unverified model behind, and fails.
execute_process(COMMAND "${ZCPACK}" verify "${CONTAINER}" RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  file(REMOVE "${CONTAINER}")
  message(FATAL_ERROR "zcpack verify failed for ${CONTAINER} (exit ${result}); removed it")
endif()

# zcpack_target_defaults(TARGET): the warning set and include layout shared by
# every zcpack target.
function(zcpack_target_defaults target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow
    -Wnon-virtual-dtor -Wcast-align -Wunused -Woverloaded-virtual -Wno-unused-parameter)
endfunction()

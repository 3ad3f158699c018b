# Warnings as errors on lesseg's own code; third-party headers are included as system headers.
function(lesseg_own_target target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Werror -Wno-unused-parameter)
endfunction()

# A target that uses LibTorch: our warnings plus the shared precompiled header.
function(lesseg_torch_target target)
  lesseg_own_target(${target})
  target_precompile_headers(${target} REUSE_FROM lesseg_pch)
endfunction()

# Compiler flags shared by every kite target (applied through kite_options, an INTERFACE target).
find_program(KITE_CCACHE ccache)
if(KITE_CCACHE)
  set(CMAKE_C_COMPILER_LAUNCHER ${KITE_CCACHE})
  set(CMAKE_CXX_COMPILER_LAUNCHER ${KITE_CCACHE})
  set(CMAKE_CUDA_COMPILER_LAUNCHER ${KITE_CCACHE})
endif()

add_library(kite_options INTERFACE)
target_compile_options(kite_options INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wshadow=local -Wnon-virtual-dtor -Wno-unused-parameter>)
if(KITE_WERROR)
  target_compile_options(kite_options INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-Werror>)
endif()

# x86-64-v3 (AVX2 + FMA + F16C): every server CPU of the last decade, and the GPU hosts, run it;
# binaries built here are carried to the GPU machine, so never -march=native.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  target_compile_options(kite_options INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-march=x86-64-v3>)
endif()

if(KITE_SANITIZE OR KITE_FUZZ)
  target_compile_options(kite_options INTERFACE
    $<$<COMPILE_LANGUAGE:CXX>:-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined>)
  target_link_options(kite_options INTERFACE -fsanitize=address,undefined)
endif()
if(KITE_TSAN)
  if(KITE_SANITIZE OR KITE_FUZZ)
    message(FATAL_ERROR "KITE_TSAN cannot be combined with ASan (KITE_SANITIZE, KITE_FUZZ)")
  endif()
  target_compile_options(kite_options INTERFACE
    $<$<COMPILE_LANGUAGE:CXX>:-fsanitize=thread -fno-omit-frame-pointer>)
  target_link_options(kite_options INTERFACE -fsanitize=thread)
endif()
if(KITE_FUZZ)
  # Coverage feedback for libFuzzer inside every library, not only in the fuzz targets.
  target_compile_options(kite_options INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-fsanitize=fuzzer-no-link>)
endif()

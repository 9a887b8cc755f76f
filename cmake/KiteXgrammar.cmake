# xgrammar's C++ core (Apache-2.0): the grammar engine of structured outputs (src/structured/).
# Built from the pinned PyPI source distribution that scripts/fetch-xgrammar.sh checks and
# unpacks (into .deps/xgrammar/ unless KITE_XGRAMMAR_SOURCE_DIR names an unpacked copy); never
# vendored. The library is third-party code: compiled with its own standard (C++17), without
# kite's warning flags, its headers included as SYSTEM so they do not trip -Werror.
set(KITE_XGRAMMAR_SOURCE_DIR "" CACHE PATH
    "Unpacked xgrammar source (empty: fetched by scripts/fetch-xgrammar.sh at configure time)")
if(NOT KITE_XGRAMMAR_SOURCE_DIR)
  execute_process(
    COMMAND ${PROJECT_SOURCE_DIR}/scripts/fetch-xgrammar.sh
    OUTPUT_VARIABLE _kite_xgrammar_dir
    OUTPUT_STRIP_TRAILING_WHITESPACE
    RESULT_VARIABLE _kite_xgrammar_rc)
  if(NOT _kite_xgrammar_rc EQUAL 0)
    message(FATAL_ERROR "scripts/fetch-xgrammar.sh failed (PyPI unreachable?): pass "
                        "-DKITE_XGRAMMAR_SOURCE_DIR=<unpacked xgrammar sdist>")
  endif()
  set(_kite_xgrammar_src "${_kite_xgrammar_dir}")
else()
  set(_kite_xgrammar_src "${KITE_XGRAMMAR_SOURCE_DIR}")
endif()
if(NOT EXISTS "${_kite_xgrammar_src}/include/xgrammar/xgrammar.h")
  message(FATAL_ERROR "no xgrammar sources at ${_kite_xgrammar_src}")
endif()
message(STATUS "xgrammar: ${_kite_xgrammar_src}")

file(GLOB _kite_xgrammar_sources "${_kite_xgrammar_src}/cpp/*.cc"
     "${_kite_xgrammar_src}/cpp/support/*.cc" "${_kite_xgrammar_src}/cpp/converter_ext/*.cc")
add_library(kite_xgrammar STATIC ${_kite_xgrammar_sources})
set_target_properties(kite_xgrammar PROPERTIES CXX_STANDARD 17 POSITION_INDEPENDENT_CODE ON)
target_include_directories(kite_xgrammar SYSTEM PUBLIC
  "${_kite_xgrammar_src}/include" "${_kite_xgrammar_src}/3rdparty/picojson"
  "${_kite_xgrammar_src}/3rdparty/dlpack/include")
target_include_directories(kite_xgrammar PRIVATE "${_kite_xgrammar_src}/cpp")
target_compile_definitions(kite_xgrammar PUBLIC XGRAMMAR_ENABLE_CPPTRACE=0
                           XGRAMMAR_ENABLE_INTERNAL_CHECK=0)
target_compile_options(kite_xgrammar PRIVATE -w -O2)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  target_compile_options(kite_xgrammar PRIVATE -march=x86-64-v3)
endif()
target_link_libraries(kite_xgrammar PUBLIC Threads::Threads)

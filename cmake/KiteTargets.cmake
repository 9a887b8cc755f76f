# kite_add_library(NAME SOURCES ... [DEPS ...] [PUBLIC_DEPS ...])
#   A static library for one layer. Include root is src/ (so `#include "core/tensor.h"`) and
#   include/ (so `#include "kite/status.h"`).
function(kite_add_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PUBLIC_DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/include)
  target_link_libraries(${name} PUBLIC kite_options ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_DEPS})
endfunction()

# kite_add_test(NAME SOURCES ... [DEPS ...] [LABELS ...] [TIMEOUT s] [PREFIX p])
#   A GoogleTest binary registered with CTest (one CTest entry per TEST via gtest_discover_tests;
#   PREFIX is put before each name, so `ctest -R p` selects a layer's tests).
#   Tests get KITE_SOURCE_DIR / KITE_SHARED_DIR / KITE_BINARY_DIR as compile definitions.
function(kite_add_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT;PREFIX" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE kite_options ${ARG_DEPS} GTest::gtest GTest::gtest_main
                        GTest::gmock)
  target_compile_definitions(${name} PRIVATE
    KITE_SOURCE_DIR="${PROJECT_SOURCE_DIR}" KITE_SHARED_DIR="${KITE_SHARED_DIR}"
    KITE_BINARY_DIR="${PROJECT_BINARY_DIR}")
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  include(GoogleTest)
  # A GTEST_SKIP()ped test is reported by ctest as skipped, never as passed.
  gtest_discover_tests(${name} TEST_PREFIX "${ARG_PREFIX}"
                       PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT}
                       SKIP_REGULAR_EXPRESSION "SKIPPED"
                       DISCOVERY_TIMEOUT 60)
endfunction()

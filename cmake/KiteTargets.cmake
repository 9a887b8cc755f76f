# kite_add_library(NAME SOURCES ... [DEPS ...] [PUBLIC_DEPS ...])
#   A static library for one layer, in the folder that calls it (src/<layer>/). Its include
#   root holds only that folder: <build>/include_roots/NAME/<layer> is a link to src/<layer>,
#   so `#include "<layer>/x.h"` works for the layer itself and, through PUBLIC linking, for
#   the layers that declare it as a dependency — and for nobody else. An include of a layer
#   that is not a declared dependency (an upward include) does not compile
#   (tests/layering checks it). include/ (the public API, `#include "kite/engine.h"`) is
#   visible to all.
function(kite_add_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PUBLIC_DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  kite_layer_include_root(${name} ${CMAKE_CURRENT_SOURCE_DIR})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/include)
  target_link_libraries(${name} PUBLIC kite_options ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_DEPS})
endfunction()

# kite_layer_include_root(TARGET FOLDER): gives TARGET the include root that exposes FOLDER
# (a folder under src/) as "<path relative to src>/".
function(kite_layer_include_root target folder)
  file(RELATIVE_PATH rel ${PROJECT_SOURCE_DIR}/src ${folder})
  set(root ${PROJECT_BINARY_DIR}/include_roots/${target})
  get_filename_component(parent ${root}/${rel} DIRECTORY)
  file(MAKE_DIRECTORY ${parent})
  if(NOT EXISTS ${root}/${rel})
    file(CREATE_LINK ${folder} ${root}/${rel} SYMBOLIC)
  endif()
  target_include_directories(${target} PUBLIC ${root})
endfunction()

# kite_add_test(NAME SOURCES ... [DEPS ...] [LABELS ...] [TIMEOUT s] [PREFIX p])
#   A GoogleTest binary registered with CTest (one CTest entry per TEST via gtest_discover_tests;
#   PREFIX is put before each name, so `ctest -R p` selects a layer's tests).
#   Tests get KITE_SOURCE_DIR / KITE_SHARED_DIR / KITE_BINARY_DIR as compile definitions, and see
#   the headers of the layers in DEPS (and theirs), plus tests/ itself.
function(kite_add_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT;PREFIX" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE kite_options ${ARG_DEPS} GTest::gtest GTest::gtest_main
                        GTest::gmock)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
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

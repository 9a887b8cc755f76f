# Builds the allowed probe (must succeed) and the upward probe (must fail because the engine's
# header is not on the scheduler's include path). Run by ctest as layering.upward_include_fails.
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BINARY_DIR} --target layering_probe_allowed
                RESULT_VARIABLE allowed_rc OUTPUT_VARIABLE allowed_out ERROR_VARIABLE allowed_out)
if(NOT allowed_rc EQUAL 0)
  message(FATAL_ERROR "the allowed includes do not compile:\n${allowed_out}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BINARY_DIR} --target layering_probe_upward
                RESULT_VARIABLE upward_rc OUTPUT_VARIABLE upward_out ERROR_VARIABLE upward_out)
if(upward_rc EQUAL 0)
  message(FATAL_ERROR "src/scheduler could include engine/engine_core.h: layering is not enforced")
endif()
if(NOT upward_out MATCHES "engine/engine_core\\.h[^\n]*(No such file|not found)")
  message(FATAL_ERROR "the upward probe failed for another reason:\n${upward_out}")
endif()
message(STATUS "upward include rejected: engine/engine_core.h is not visible from src/scheduler")

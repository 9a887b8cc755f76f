# KITE_GIT_COMMIT: the commit the binary was built from (or "unknown" outside a checkout).
execute_process(COMMAND git rev-parse --short=12 HEAD WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
                OUTPUT_VARIABLE KITE_GIT_COMMIT OUTPUT_STRIP_TRAILING_WHITESPACE
                RESULT_VARIABLE _kite_git_rc ERROR_QUIET)
if(NOT _kite_git_rc EQUAL 0 OR NOT KITE_GIT_COMMIT)
  set(KITE_GIT_COMMIT "unknown")
endif()
configure_file(${PROJECT_SOURCE_DIR}/src/core/version.h.in ${PROJECT_BINARY_DIR}/generated/core/version.h @ONLY)

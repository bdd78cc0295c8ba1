# Compiles a file that includes only HEADER, with -I INCLUDE_DIR and nothing
# else, and fails if it does not compile or if any librdkafka header is among
# the files it read.
string(MAKE_C_IDENTIFIER "${HEADER}" id)
set(source "${WORK_DIR}/isolation_${id}.cpp")
file(WRITE "${source}" "#include <${HEADER}>\nint main() { return 0; }\n")
execute_process(
    COMMAND "${CXX}" -std=c++20 -fsyntax-only -H -I "${INCLUDE_DIR}" "${source}"
    RESULT_VARIABLE rc
    ERROR_VARIABLE included)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${HEADER} does not compile on its own with -I${INCLUDE_DIR}:\n${included}")
endif()
if(included MATCHES "rdkafka")
  message(FATAL_ERROR "${HEADER} pulls in librdkafka:\n${included}")
endif()
string(REGEX MATCHALL "[^\n]*dispatch/[^\n]*" ours "${included}")
message(STATUS "${HEADER} compiles alone; it includes no librdkafka header. Project headers read:\n${ours}")

# dispatch-relay against a PostgreSQL server run as in production: fsync and
# synchronous_commit on, TLS with the suite's test CA (scripts/kafka_security.py).
# The fixture postgres_durable_server starts it (scripts/postgres_cluster.py
# start --durable --tls); the tests halt it as a crash would and resume it.
# Included by tests/relay/CMakeLists.txt when relay_process_tests exists.
find_package(Python3 COMPONENTS Interpreter REQUIRED)
set(postgres_script ${PROJECT_SOURCE_DIR}/scripts/postgres_cluster.py)
set(durable_dir ${PROJECT_BINARY_DIR}/postgres-durable)
add_test(NAME postgres_durable_server.start
    COMMAND Python3::Interpreter ${postgres_script} start --dir ${durable_dir} --durable --tls)
add_test(NAME postgres_durable_server.stop
    COMMAND Python3::Interpreter ${postgres_script} stop --dir ${durable_dir})
set_tests_properties(postgres_durable_server.start PROPERTIES
    FIXTURES_SETUP postgres_durable_server LABELS "relay;postgres" TIMEOUT 120)
set_tests_properties(postgres_durable_server.stop PROPERTIES
    FIXTURES_CLEANUP postgres_durable_server LABELS "relay;postgres" TIMEOUT 60)

# HttpGet of the HTTP tests (civetweb's client) reads /readyz.
target_sources(relay_process_tests PRIVATE relay_operations_test.cpp http_test_support.cpp)
target_link_libraries(relay_process_tests PRIVATE civetweb::civetweb)
target_compile_definitions(relay_process_tests PRIVATE
    DISPATCH_POSTGRES_SCRIPT="${postgres_script}")
foreach(test RelayOperations.ADatabaseCrashLosesNoCommittedRowAndReadyzFollowsIt
             RelayOperations.ReachesPostgresOverVerifiedTls
             RelayOperations.RefusesAServerWhoseCertificateDoesNotMatch)
  add_test(NAME ${test} COMMAND relay_process_tests --gtest_filter=${test})
  # RESOURCE_LOCK: the crash test halts the server the others use.
  set_tests_properties(${test} PROPERTIES
      LABELS "relay;postgres" TIMEOUT 300 FIXTURES_REQUIRED postgres_durable_server
      RESOURCE_LOCK postgres_durable_server
      ENVIRONMENT DISPATCH_POSTGRES_DURABLE_DIR=${durable_dir})
endforeach()

# The relay's HTTP listener and publisher tally (label `relay`). Included by
# tests/relay/CMakeLists.txt:
#   include(${CMAKE_CURRENT_SOURCE_DIR}/http.cmake OPTIONAL)
#
# http_tests needs no database and no broker. The exposition is checked by
# `promtool check metrics`, and one test runs a real Prometheus server that
# scrapes the listener (Debian's `prometheus` package; scripts/install-deps.sh):
# those two skip, saying why, when /usr/bin/promtool or /usr/bin/prometheus is
# missing. The Prometheus test starts its own server on a free loopback port
# with its own config and storage in a temporary folder, so Debian's
# prometheus service (port 9090) neither matters nor is touched.
#
# The sanitizer builds run them too, with no suppressions: civetweb and
# prometheus-cpp from Debian are not instrumented, but civetweb's threads and
# locks are pthreads, which ThreadSanitizer intercepts, so the hand-over of a
# request to a worker and back is seen; only civetweb's own memory accesses go
# unchecked. (Checked: this executable under -fsanitize=thread on Debian's
# librdkafka, all tests passing with no report.)
add_executable(relay_http_tests
    ${CMAKE_CURRENT_LIST_DIR}/http_endpoint_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/http_metrics_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/http_prometheus_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/http_publisher_tally_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/http_test_support.cpp
    # Under ThreadSanitizer, librdkafka's C11 threads (tests/CMakeLists.txt).
    $<$<TARGET_EXISTS:dispatch_tsan_c11_threads>:$<TARGET_OBJECTS:dispatch_tsan_c11_threads>>)
# civetweb's client (mg_download) is the tests' HTTP client; Prometheus's
# query answers are read with nlohmann/json (nlohmann-json3-dev).
find_package(civetweb CONFIG REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
target_link_libraries(relay_http_tests PRIVATE
    dispatch_relay_core dispatch::testing civetweb::civetweb nlohmann_json::nlohmann_json
    GTest::gmock_main dispatch_kafka_build_flags)
target_compile_definitions(relay_http_tests PRIVATE
    DISPATCH_PROMTOOL="/usr/bin/promtool" DISPATCH_PROMETHEUS="/usr/bin/prometheus")
include(GoogleTest)
gtest_discover_tests(relay_http_tests
    PROPERTIES LABELS relay TIMEOUT 120
    DISCOVERY_TIMEOUT 60 DISCOVERY_MODE PRE_TEST)

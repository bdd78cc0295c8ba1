# The relay's HTTP listener (/healthz, /readyz, /metrics) and the publisher
# tally, added to dispatch_relay_core. Included by relay/CMakeLists.txt after
# it defines that target:
#   include(${CMAKE_CURRENT_SOURCE_DIR}/http.cmake OPTIONAL)
#
# prometheus-cpp (its core: metric families and the text serializer) and
# civetweb (the HTTP server) are Debian 12 packages, prometheus-cpp-dev and
# libcivetweb-dev (scripts/install-deps.sh). Only the relay links them, never
# a library target. prometheus-cpp's package config also asks for CURL and
# ZLIB (its push and pull parts), which prometheus-cpp-dev depends on.
# Debian ships no version file for it: 1.0.1 is what Debian 12 has.
find_package(prometheus-cpp CONFIG REQUIRED)
find_package(civetweb CONFIG REQUIRED)

target_sources(dispatch_relay_core PRIVATE
    ${CMAKE_CURRENT_LIST_DIR}/http_endpoint.cpp
    ${CMAKE_CURRENT_LIST_DIR}/prometheus_metrics.cpp
    ${CMAKE_CURRENT_LIST_DIR}/publisher_tally.cpp)
# Relay headers are included by their name ("http_endpoint.h"); the relay's
# tests include them the same way. prometheus_metrics.h includes
# prometheus-cpp's headers, hence PUBLIC.
target_include_directories(dispatch_relay_core PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(dispatch_relay_core
    PUBLIC prometheus-cpp::core dispatch::kafka dispatch::dispatcher
    PRIVATE civetweb::civetweb)

#!/usr/bin/env bash
# Quick start, part two: installs the dependencies, then builds and runs the
# test suite in four builds, each in its own build folder:
#   release                 warnings as errors, every test, including the
#                           real-Kafka ones (label `kafka`: a JVM Kafka
#                           cluster that the CTest fixture starts)
#   release-rdkafka-debian  the same build on Debian 12's librdkafka 2.0.2,
#                           the supported floor: every test but the `slow`
#                           ones (unit, integration, reliability, the
#                           real-Kafka contract and security tests)
#   asan                    AddressSanitizer + UndefinedBehaviorSanitizer +
#                           LeakSanitizer
#   tsan                    ThreadSanitizer
# release, asan and tsan run on the pinned current librdkafka, which
# scripts/build-librdkafka.sh builds from Debian's source package (once; a
# second run builds nothing), asan and tsan with their own sanitizer.
# The sanitizer builds skip labels `kafka` and `slow`: the real-Kafka tests
# check the broker-facing contract, which the release build already covers,
# and would only be slower under the sanitizers. Only the security tests
# (label `security`: TLS and SASL, where the client's error and log paths
# handle secrets) run on real Kafka in them too, in a second pass. The
# embedded-cluster soak is `slow` with a million messages; the sanitizer
# builds run it with 200,000 under another name, without that label
# (tests/CMakeLists.txt).
# Every build runs the relay's tests (label `relay`: dispatch-relay as a
# child process on PostgreSQL and the embedded cluster, its HTTP endpoint
# scraped by a real Prometheus; docs/testing.md, "dispatch-relay").
# Set DISPATCH_KAFKA_TEST_BUILDS="release" (for example) to run fewer
# builds. Each build is the CMake preset of its name (CMakePresets.json), so
# a developer reproduces it with `cmake --preset asan`.
#
# Then, each skipped when its variable is 1:
#   consumers  the four ways a service consumes the library, once on Debian's
#              librdkafka (pkg-config) and once on the pinned librdkafka's
#              own CMake package (DISPATCH_KAFKA_SKIP_CONSUMERS)
#   style      clang-format and clang-tidy over src/ and include/ (DISPATCH_KAFKA_SKIP_STYLE)
#   docs       the fault table in docs/reliability.md against the test's, and
#              the doxygen API reference, warnings as errors (DISPATCH_KAFKA_SKIP_DOCS)
#   coverage   line and branch coverage of src/ by the unit and integration
#              tests, HTML in build/coverage/html (DISPATCH_KAFKA_SKIP_COVERAGE)
#   fuzz       libFuzzer over config validation and Publish, 30 s per target
#              (Clang, ASan+UBSan; DISPATCH_KAFKA_SKIP_FUZZ, FUZZ_SECONDS)
# Each stage prints its wall time ("stage ... took N s").
set -euo pipefail
cd "$(dirname "$0")/.."

stage_start=$SECONDS
stage() {  # stage NAME: prints how long the stage before it took
  echo "=== stage ${current_stage:-setup} took $((SECONDS - stage_start)) s"
  current_stage=$1
  stage_start=$SECONDS
}

scripts/install-deps.sh
root=${BUILD_ROOT:-build}
builds=${DISPATCH_KAFKA_TEST_BUILDS:-release release-rdkafka-debian asan tsan}
# JDK, Maven and kcat from apt; the pinned Kafka jars from Maven Central
# (each build's fixtures read them from the build folder).
# The second pinned Kafka (3.9) runs the SCRAM tests; see scripts/kafka/pom.xml.
for b in $builds; do
  scripts/install-kafka.sh "$root/$b/kafka/dist"
  scripts/install-kafka.sh "$root/$b/kafka/dist-scram" scram
done
jobs=${JOBS:-$(nproc)}

for b in $builds; do
  stage "$b"
  select=()
  rdkafka=()
  case "$b" in
    release) rdkafka=(release) ;;
    release-rdkafka-debian) select=(-LE slow) ;;
    asan | tsan) rdkafka=("$b") select=(-LE "kafka|slow") ;;
    *) echo "unknown build '$b' (allowed: release release-rdkafka-debian asan tsan)" >&2; exit 2 ;;
  esac
  prefix=()
  if ((${#rdkafka[@]} > 0)); then
    scripts/build-librdkafka.sh "${rdkafka[0]}"
    prefix=(-DDISPATCH_KAFKA_RDKAFKA_PREFIX="$(realpath -m "$root/librdkafka/${rdkafka[0]}")")
  fi
  echo "=== $b build"
  # The preset sets the build type, the sanitizer, warnings as errors and
  # which librdkafka.
  cmake --preset "$b" -B "$root/$b" "${prefix[@]}"
  cmake --build "$root/$b" -j "$jobs"
  echo "=== $b tests"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir "$root/$b" --output-on-failure -j "$jobs" "${select[@]}"
  if [ "$b" = asan ] || [ "$b" = tsan ]; then
    echo "=== $b security tests (real Kafka)"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
      ctest --test-dir "$root/$b" --output-on-failure -j "$jobs" -L security
  fi
done

# A service-like project consumes the library four ways: FetchContent,
# add_subdirectory, find_package after install, pkg-config; on each kind of
# librdkafka installation.
if [ "${DISPATCH_KAFKA_SKIP_CONSUMERS:-0}" != 1 ]; then
  stage consumers
  BUILD_ROOT="$root" scripts/check-consumers.sh
  scripts/build-librdkafka.sh release
  BUILD_ROOT="$root" RDKAFKA_PREFIX="$root/librdkafka/release" scripts/check-consumers.sh
fi

export BUILD_ROOT="$root" JOBS="$jobs"
if [ "${DISPATCH_KAFKA_SKIP_STYLE:-0}" != 1 ]; then stage style; scripts/check-style.sh; fi
if [ "${DISPATCH_KAFKA_SKIP_DOCS:-0}" != 1 ]; then stage docs; scripts/build-docs.sh; fi
if [ "${DISPATCH_KAFKA_SKIP_COVERAGE:-0}" != 1 ]; then stage coverage; scripts/coverage.sh; fi
if [ "${DISPATCH_KAFKA_SKIP_FUZZ:-0}" != 1 ]; then stage fuzz; scripts/fuzz.sh; fi
stage done

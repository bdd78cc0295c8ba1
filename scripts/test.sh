#!/usr/bin/env bash
# Quick start, part two: installs the dependencies, then builds and runs the
# whole test suite three times, each in its own build folder:
#   release  warnings as errors, every test
#   asan     AddressSanitizer + UndefinedBehaviorSanitizer + LeakSanitizer
#   tsan     ThreadSanitizer
# Set DISPATCH_KAFKA_TEST_BUILDS="release" (for example) to run fewer.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

root=${BUILD_ROOT:-build}
builds=${DISPATCH_KAFKA_TEST_BUILDS:-release asan tsan}
jobs=${JOBS:-$(nproc)}

for b in $builds; do
  case "$b" in
    release) flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
    asan) flags=(-DCMAKE_BUILD_TYPE=Debug "-DDISPATCH_KAFKA_SANITIZE=address,undefined") ;;
    tsan) flags=(-DCMAKE_BUILD_TYPE=Debug -DDISPATCH_KAFKA_SANITIZE=thread) ;;
    *) echo "unknown build '$b' (allowed: release asan tsan)" >&2; exit 2 ;;
  esac
  echo "=== $b build"
  cmake -S . -B "$root/$b" -G Ninja -DDISPATCH_KAFKA_WERROR=ON "${flags[@]}"
  cmake --build "$root/$b" -j "$jobs"
  echo "=== $b tests"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir "$root/$b" --output-on-failure -j "$jobs"
done

# A service-like project consumes the library four ways: FetchContent,
# add_subdirectory, find_package after install, pkg-config.
if [ "${DISPATCH_KAFKA_SKIP_CONSUMERS:-0}" != 1 ]; then
  BUILD_ROOT="$root" scripts/check-consumers.sh
fi

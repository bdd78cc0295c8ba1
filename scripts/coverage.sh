#!/usr/bin/env bash
# Line and branch coverage of src/ by the unit and integration tests (the
# ones that need no real Kafka), from the `coverage` preset's build:
# a summary on stdout and an annotated HTML report in
# $BUILD_ROOT/coverage/html/index.html (default build/coverage/html).
# Builds only the unit and integration test binaries, incrementally.
set -euo pipefail
cd "$(dirname "$0")/.."

root=${BUILD_ROOT:-build}
dir="$root/coverage"
jobs=${JOBS:-$(nproc)}

echo "=== coverage build"
scripts/build-librdkafka.sh release  # the preset's librdkafka; built once
cmake --preset coverage -B "$dir" \
  -DDISPATCH_KAFKA_RDKAFKA_PREFIX="$(realpath -m "$root/librdkafka/release")" >/dev/null
cmake --build "$dir" -j "$jobs" --target unit_tests integration_tests dispatcher_tests sqlite_store_tests

echo "=== coverage tests"
# Counts add up across runs; start from zero so the report is this run's.
find "$dir" -name '*.gcda' -delete
ctest --test-dir "$dir" -L 'unit|integration' -j "$jobs" --output-on-failure

echo "=== coverage report"
rm -rf "$dir/html"
mkdir -p "$dir/html"
# Branches the compiler adds for exceptions (every call that may throw) and
# for code without source are left out: they would swamp the decisions the
# code makes itself.
gcovr --root . --filter 'src/' --object-directory "$dir" -j "$jobs" \
  --exclude-throw-branches --exclude-unreachable-branches \
  --txt --print-summary \
  --html-details "$dir/html/index.html" --html-title "dispatch-kafka coverage of src/" \
  "$dir"
echo "coverage: $dir/html/index.html"

#!/usr/bin/env bash
# Builds and runs tests/consumers, a service-like project, against this
# library in the four ways a service consumes it: FetchContent,
# add_subdirectory, find_package after an install, and pkg-config.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
root=${BUILD_ROOT:-build}/consumers
rm -rf "$root"
prefix=$(realpath -m "$root/prefix")

echo "=== install into $prefix"
cmake -S . -B "$root/lib" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDISPATCH_KAFKA_BUILD_TESTS=OFF \
  -DDISPATCH_KAFKA_BUILD_EXAMPLES=OFF -DDISPATCH_KAFKA_BUILD_BENCH=OFF \
  -DDISPATCH_KAFKA_BUILD_TESTING_LIB=ON -DDISPATCH_KAFKA_INSTALL=ON >/dev/null
cmake --build "$root/lib"
cmake --install "$root/lib" --prefix "$prefix" >/dev/null

export PKG_CONFIG_PATH="$prefix/lib/pkgconfig:$prefix/lib/x86_64-linux-gnu/pkgconfig"
for mode in fetchcontent subdirectory find_package pkgconfig; do
  echo "=== consumer via $mode"
  cmake -S tests/consumers -B "$root/$mode" -G Ninja -DCONSUMER_MODE=$mode \
    -DDISPATCH_KAFKA_SOURCE_DIR="$src" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
  cmake --build "$root/$mode"
  ctest --test-dir "$root/$mode" --output-on-failure
done
echo "consumers: 4 of 4 ways built and passed"

#!/usr/bin/env bash
# Builds and runs tests/consumers, a service-like project, against this
# library in the four ways a service consumes it: FetchContent,
# add_subdirectory, find_package after an install, and pkg-config. In the
# first three it also runs the store contract suite over a store of its own.
#
#   RDKAFKA_PREFIX=DIR  librdkafka from its own CMake package (and pkg-config
#                       files) installed in DIR, as vcpkg, Conan or a source
#                       build install it (scripts/build-librdkafka.sh release);
#                       default: the system's (Debian's pkg-config files)
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
rdkafka=()
if [ -n "${RDKAFKA_PREFIX:-}" ]; then
  rdkafka=("$(realpath "$RDKAFKA_PREFIX")")
  root=${BUILD_ROOT:-build}/consumers-rdkafka-cmake
  echo "=== consumers on the librdkafka in ${rdkafka[0]}"
else
  root=${BUILD_ROOT:-build}/consumers
  echo "=== consumers on the system's librdkafka"
fi
rm -rf "$root"
prefix=$(realpath -m "$root/prefix")
# Where a service finds installed packages: only that, no other flag.
search=$(IFS=';'; echo "$prefix${rdkafka:+;${rdkafka[*]}}")

echo "=== install into $prefix"
cmake -S . -B "$root/lib" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDISPATCH_KAFKA_BUILD_TESTS=OFF \
  -DDISPATCH_KAFKA_BUILD_EXAMPLES=OFF -DDISPATCH_KAFKA_BUILD_BENCH=OFF \
  -DDISPATCH_KAFKA_BUILD_TESTING_LIB=ON -DDISPATCH_KAFKA_INSTALL=ON -DCMAKE_PREFIX_PATH="$search" >/dev/null
cmake --build "$root/lib"
cmake --install "$root/lib" --prefix "$prefix" >/dev/null

export PKG_CONFIG_PATH="$prefix/lib/pkgconfig:$prefix/lib/x86_64-linux-gnu/pkgconfig${rdkafka:+:${rdkafka[0]}/lib/pkgconfig}"
for mode in fetchcontent subdirectory find_package pkgconfig; do
  echo "=== consumer via $mode"
  cmake -S tests/consumers -B "$root/$mode" -G Ninja -DCONSUMER_MODE=$mode \
    -DDISPATCH_KAFKA_SOURCE_DIR="$src" -DCMAKE_PREFIX_PATH="$search" >/dev/null
  cmake --build "$root/$mode"
  ctest --test-dir "$root/$mode" --output-on-failure
  if [ "$mode" != pkgconfig ]; then
    # The consumer's own store went through the library's contract suite.
    cases=$(ctest --test-dir "$root/$mode" -N -R '^Vector\.' |
      sed -n 's/^Total Tests: //p')
    if [ "${cases:-0}" -eq 0 ]; then
      echo "check-consumers: the $mode consumer ran no case of the store contract" >&2
      exit 1
    fi
    echo "consumer via $mode: its own store passed the $cases cases of the store contract"
  fi
  # The consumer must run on the librdkafka it was meant to, not on another
  # one that happens to be installed.
  loaded=$(ldd "$root/$mode/consumer" | awk '/librdkafka\.so/ { print $3 }')
  echo "consumer via $mode loads $loaded"
  if [ -n "${rdkafka[0]:-}" ] && [[ "$loaded" != "${rdkafka[0]}"/* ]]; then
    echo "check-consumers: the $mode consumer loads $loaded, not the librdkafka in ${rdkafka[0]}" >&2
    exit 1
  fi
done
echo "consumers: 4 of 4 ways built and passed (librdkafka: ${rdkafka[0]:-system})"

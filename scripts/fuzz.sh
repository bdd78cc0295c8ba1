#!/usr/bin/env bash
# Builds the libFuzzer targets with Clang (ASan + UBSan) and runs each for a
# bounded time (FUZZ_SECONDS, default 30) from the seed corpus in
# tests/fuzz/corpus. A crash fails the run; its input is left in the build
# folder, to become a regression seed in tests/fuzz/corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/apt-install-missing.sh clang-14 libclang-rt-14-dev

root=${BUILD_ROOT:-build}
seconds=${FUZZ_SECONDS:-30}
build=$root/fuzz
echo "=== fuzz build"
# On the pinned librdkafka, uninstrumented: the fuzzers instrument the
# library's own code (Clang's sanitizer runtime and GCC's do not mix).
scripts/build-librdkafka.sh release
CXX=clang++-14 cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DDISPATCH_KAFKA_RDKAFKA_PREFIX="$(realpath -m "$root/librdkafka/release")" \
  -DDISPATCH_KAFKA_FUZZ=ON "-DDISPATCH_KAFKA_SANITIZE=address,undefined" \
  -DDISPATCH_KAFKA_BUILD_TESTS=OFF -DDISPATCH_KAFKA_BUILD_EXAMPLES=OFF \
  -DDISPATCH_KAFKA_BUILD_BENCH=OFF -DDISPATCH_KAFKA_BUILD_TESTING_LIB=OFF >/dev/null
cmake --build "$build" --target fuzz_config fuzz_publish
build=$(realpath "$build")
for target in fuzz_config fuzz_publish; do
  echo "=== $target for ${seconds}s"
  corpus=$build/corpus-$target
  mkdir -p "$corpus"
  status=0
  ASAN_OPTIONS=detect_leaks=1 "$build/tests/fuzz/$target" -max_total_time="$seconds" -max_len=4096 \
    -print_final_stats=1 -artifact_prefix="$build/$target-" "$corpus" "tests/fuzz/corpus/$target" \
    >"$build/$target.log" 2>&1 || status=$?
  grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==ERROR|SUMMARY)" \
    "$build/$target.log" || true
  if [ "$status" != 0 ]; then
    echo "$target: failed (exit $status); input and log in $build" >&2
    tail -40 "$build/$target.log" >&2
    exit 1
  fi
done
echo "fuzz: no crash"

#!/usr/bin/env bash
# Quick start, part one: installs the dependencies, builds, and runs the
# example on an embedded Kafka cluster (in process, nothing else to install).
# Extra arguments go to the example, e.g. --brokers host:9092.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
build=${BUILD_DIR:-build/release}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" --target publish_example
"$build/examples/publish_example" "$@"

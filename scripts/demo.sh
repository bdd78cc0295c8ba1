#!/usr/bin/env bash
# Quick start, part one: installs the dependencies, builds, and runs the
# outbox dispatcher demo on an embedded Kafka cluster (in process, nothing
# else to install): it seeds a SQLite outbox, publishes it, reads Kafka back
# and ends in "verified". Extra arguments go to the demo (see --help).
# It builds on the system's librdkafka (Debian's package) in build/demo, a
# folder of its own, so it neither needs nor disturbs the presets' builds.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
build=${BUILD_DIR:-build/demo}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" --target outbox_demo
"$build/examples/outbox_dispatcher/outbox_demo" "$@"

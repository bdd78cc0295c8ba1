#!/usr/bin/env bash
# Fetches Kafka Connect and Debezium's PostgreSQL connector, pinned in
# bench/debezium/pom.xml, from Maven Central into one folder of jars (Maven
# caches them in ~/.m2), for bench/relay_vs_debezium.py (B10). The Kafka
# broker, Java, Maven and kcat come from scripts/install-kafka.sh.
#
#   bench/debezium/install.sh [DIST_DIR]     default: build/debezium-dist
#
# Idempotent: a second run fetches nothing and needs no network. Not part of
# CI or scripts/install-deps.sh: only the benchmark needs these jars.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dist=$(realpath -m "${1:-$root/build/debezium-dist}")  # Maven resolves relative paths against the pom
pom=$root/bench/debezium/pom.xml

# The stamp holds the pom's hash: changing the pom refetches.
stamp=$dist/.pom.sha256
want=$(sha256sum "$pom" | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "fetching Kafka Connect and Debezium jars into $dist"
rm -rf "$dist.tmp"
mvn -B -q -Dstyle.color=never -f "$pom" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$dist.tmp/libs"
echo "$want" >"$dist.tmp/.pom.sha256"
rm -rf "$dist"
mv "$dist.tmp" "$dist"

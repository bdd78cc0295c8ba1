#!/usr/bin/env bash
# Installs what the real-Kafka tests (CTest label `kafka`) need: a JDK, Maven
# and kcat from Debian's packages, and the Apache Kafka server jars pinned in
# scripts/kafka/pom.xml from Maven Central (Maven caches them in ~/.m2).
#
#   scripts/install-kafka.sh [DIST_DIR [scram]]     default: build/kafka-dist
#
# With `scram`, the jars of the second pinned version (kafka.scram.version in
# the pom; see there why) instead of kafka.version.
#
# Idempotent: a second run installs nothing and needs no network. CI and a
# fresh machine run exactly this (through scripts/test.sh or the CTest fixture).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dist=$(realpath -m "${1:-$root/build/kafka-dist}")  # Maven resolves relative paths against the pom
pom=$root/scripts/kafka/pom.xml
case "${2:-}" in
  "") property=kafka.version ;;
  scram) property=kafka.scram.version ;;
  *) echo "install-kafka.sh: unknown server '$2' (allowed: scram, or nothing)" >&2; exit 2 ;;
esac
version=$(grep -o "<$property>[^<]*" "$pom" | cut -d'>' -f2)

# The JDK (not only the JRE) because a test compiles a few lines of Java that
# ask Kafka's own client which partition a key belongs to.
packages=(openjdk-17-jre-headless openjdk-17-jdk-headless maven kcat python3)
"$root/scripts/apt-install-missing.sh" "${packages[@]}"

# The stamp holds the pom's hash and the version: changing either refetches.
stamp=$dist/.pom.sha256
want="$(sha256sum "$pom" | cut -d' ' -f1) $version"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "fetching Kafka jars ($version) into $dist"
rm -rf "$dist.tmp"
mvn -B -q -Dstyle.color=never -f "$pom" dependency:copy-dependencies \
    -Dkafka.version="$version" -DincludeScope=runtime -DoutputDirectory="$dist.tmp/libs"
echo "$version" >"$dist.tmp/VERSION"
echo "$want" >"$dist.tmp/.pom.sha256"
rm -rf "$dist"
mv "$dist.tmp" "$dist"

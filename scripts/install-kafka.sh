#!/usr/bin/env bash
# Installs what the real-Kafka tests (CTest label `kafka`) need: a JDK, Maven
# and kcat from Debian's packages, and the Apache Kafka server jars pinned in
# scripts/kafka/pom.xml from Maven Central (Maven caches them in ~/.m2).
#
#   scripts/install-kafka.sh [DIST_DIR]     default: build/kafka-dist
#
# Idempotent: a second run installs nothing and needs no network. CI and a
# fresh machine run exactly this (through scripts/test.sh or the CTest fixture).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dist=$(realpath -m "${1:-$root/build/kafka-dist}")  # Maven resolves relative paths against the pom
pom=$root/scripts/kafka/pom.xml

# The JDK (not only the JRE) because a test compiles a few lines of Java that
# ask Kafka's own client which partition a key belongs to.
packages=(openjdk-17-jre-headless openjdk-17-jdk-headless maven kcat python3)
"$root/scripts/apt-install-missing.sh" "${packages[@]}"

# The stamp holds the pom's hash: changing the pinned version refetches.
stamp=$dist/.pom.sha256
want=$(sha256sum "$pom" | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "fetching Kafka jars ($(grep -o '<kafka.version>[^<]*' "$pom" | cut -d'>' -f2)) into $dist"
rm -rf "$dist.tmp"
mvn -B -q -Dstyle.color=never -f "$pom" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$dist.tmp/libs"
grep -o '<kafka.version>[^<]*' "$pom" | cut -d'>' -f2 >"$dist.tmp/VERSION"
echo "$want" >"$dist.tmp/.pom.sha256"
rm -rf "$dist"
mv "$dist.tmp" "$dist"

#!/usr/bin/env bash
# Builds the API reference of the public headers (include/) with doxygen into
# $BUILD_ROOT/docs/html (default build/docs/html). Fails on the first warning,
# an undocumented public name included (Doxyfile: WARN_AS_ERROR). First it
# checks that the generated fault matrix in docs/reliability.md is the test's
# table (scripts/gen-fault-table.sh --check; it needs a built reliability_tests).
#
#   DISPATCH_KAFKA_DOCS_SKIP="include/a.h ..."  headers to leave out, while
#                                               another branch owns them
set -euo pipefail
cd "$(dirname "$0")/.."

root=${BUILD_ROOT:-build}
version=$(sed -n 's/.*kVersionString = "\(.*\)";/\1/p' include/dispatch/version.h)
echo "=== fault matrix table"
BUILD_ROOT="$root" scripts/gen-fault-table.sh --check
mkdir -p "$root/docs"
rm -rf "$root/docs/html"  # no page of a removed name survives
echo "=== doxygen ($version)"
# Settings after the Doxyfile's override it (doxygen reads the last one).
{
  cat Doxyfile
  echo "OUTPUT_DIRECTORY = $root/docs"
  if [ -n "${DISPATCH_KAFKA_DOCS_SKIP:-}" ]; then echo "EXCLUDE = $DISPATCH_KAFKA_DOCS_SKIP"; fi
} | DISPATCH_KAFKA_VERSION="$version" doxygen -
echo "docs: $root/docs/html/index.html"

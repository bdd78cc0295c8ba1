#!/usr/bin/env bash
# Checks that the library and relay sources (src/, include/, relay/) are formatted as
# .clang-format says and clean under the checks of .clang-tidy. Changes
# nothing: to fix the format, run `clang-format -i FILE`.
#
#   DISPATCH_KAFKA_STYLE_SKIP="a.cpp b.h"  files (relative to the repository)
#                                         to leave out of both checks
#   BUILD_ROOT (default build)            clang-tidy reads the compile commands
#                                         of $BUILD_ROOT/dev (configured here,
#                                         not built: the project generates no
#                                         sources)
set -euo pipefail
cd "$(dirname "$0")/.."

root=${BUILD_ROOT:-build}
jobs=${JOBS:-$(nproc)}
skip=" ${DISPATCH_KAFKA_STYLE_SKIP:-} "

files=()
headers=()
while IFS= read -r f; do
  case "$skip" in *" $f "*) echo "skipped: $f"; continue ;; esac
  files+=("$f")
  case "$f" in *.h) headers+=("$f") ;; esac
done < <(git ls-files 'src/*.cpp' 'src/*.h' 'include/*.h' 'relay/*.cpp' 'relay/*.h')

# Both checks run, so one run lists everything to fix.
status=0
echo "=== clang-format (${#files[@]} files)"
clang-format --dry-run -Werror "${files[@]}" || status=1

echo "=== clang-tidy"
cmake --preset dev -B "$root/dev" >/dev/null
# Diagnostics in a header count only for the headers checked here, so a
# skipped header stays skipped when a checked source includes it.
filter=$(printf '%s\n' "${headers[@]}" | sed 's/[.]/[.]/g' | paste -sd'|')
# -Wno-unknown-warning-option: clang does not know GCC's -Wno-restrict.
printf '%s\n' "${files[@]}" |
  xargs -P "$jobs" -n 1 clang-tidy -p "$root/dev" --quiet \
    --extra-arg=-Wno-unknown-warning-option --header-filter="/($filter)$" 2> >(
    grep -v -E '^[0-9]+ warnings( and [0-9]+ errors)? generated\.$|^Suppressed [0-9]+ warnings|^Use -header-filter|^Error while processing' >&2) || status=1
if [ "$status" != 0 ]; then
  echo "style: FAILED" >&2
  exit 1
fi
echo "style: ok"

#!/usr/bin/env bash
# Builds the pinned current librdkafka from Debian's source package, for the
# project's own builds (the CMake presets point at the prefix it installs).
#
#   scripts/build-librdkafka.sh VARIANT     VARIANT: release, asan or tsan
#
# Installs into $BUILD_ROOT/librdkafka/VARIANT (default build/librdkafka/...):
# the C and C++ libraries, headers, pkg-config files and librdkafka's own
# CMake package (RdKafkaConfig.cmake), as vcpkg, Conan and a source build
# install them. `asan` and `tsan` are built with the sanitizer of the preset
# of that name, so the sanitizer sees inside librdkafka too.
#
# The source comes from Debian's unstable (or testing) distribution through
# `apt-get source`, with a private apt state under $BUILD_ROOT/librdkafka/apt
# (the machine's own apt configuration is not changed). The mirror is the one
# this machine's apt already uses for Debian; apt checks the archive's
# signature (debian-archive-keyring) and the source files' checksums.
#
# Idempotent: a second run with the same version and variant builds and
# downloads nothing.
set -euo pipefail

# The one place the version is pinned: Debian's source package version.
version=2.14.2-1
upstream=${version%-*}

variant=${1:-}
case "$variant" in
  release) sanitize="" ;;
  asan) sanitize="-fsanitize=address,undefined -fno-omit-frame-pointer" ;;
  tsan) sanitize="-fsanitize=thread" ;;
  *) echo "build-librdkafka.sh: unknown variant '$variant' (allowed: release, asan, tsan)" >&2; exit 2 ;;
esac

# librdkafka's CMake build (up to 2.14.2) never defines
# HAVE_ATOMICS_{32,64}_ATOMIC (only its configure script does), so
# rd_atomic32_set and rd_atomic64_set take rdatomic.h's "FIXME" branch: a
# plain store that returns the new value instead of the old one.
# ThreadSanitizer reports each as a data race, and librdkafka's handling of
# all brokers going down relies on the old value (librdkafka PR 5136 fixes
# the CMake build). Defining them gives what the configure build, and so
# Debian's package, has: __atomic_exchange_n.
flags="-DHAVE_ATOMICS_32_ATOMIC=1 -DHAVE_ATOMICS_64_ATOMIC=1${sanitize:+ $sanitize}"

root=$(cd "$(dirname "$0")/.." && pwd)
base=$(realpath -m "${BUILD_ROOT:-$root/build}/librdkafka")
prefix=$base/$variant
stamp=$prefix/.built
want="librdkafka $version $variant $flags"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

# dpkg-dev unpacks the source package; the rest are librdkafka's build
# dependencies for compression, TLS, SASL (GSSAPI through Cyrus SASL) and
# the OIDC token fetcher (curl), as Debian builds it.
"$root/scripts/apt-install-missing.sh" dpkg-dev cmake ninja-build pkg-config gcc g++ \
  liblz4-dev libssl-dev libsasl2-dev libzstd-dev zlib1g-dev libcurl4-openssl-dev

src=$base/src/librdkafka-$upstream
if [ ! -f "$src/.unpacked" ]; then
  # The Debian mirror this machine's apt uses, from the deb822 sources or
  # the one-line list: the first enabled entry whose URI is a Debian archive
  # (ends in /debian) and that serves the distribution itself (not its
  # security archive).
  mirror=$(
    {
      cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '
        function flush() {
          if (uris != "" && suites != "" && enabled != "no") print uris
          uris = ""; suites = ""; enabled = ""
        }
        /^[ \t]*$/ { flush(); next }
        /^URIs:/ { for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) { uris = $i; break } }
        /^Suites:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) suites = $i }
        /^Enabled:/ { enabled = tolower($2) }
        END { flush() }'
      grep -hE '^deb +(\[[^]]*\] +)?[a-z]+://' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
        grep -v security | sed -E 's/^deb +(\[[^]]*\] +)?//' | awk '$1 ~ /\/debian\/?$/ { print $1 }'
    } | grep -m1 -E '^[a-z]+://' || true
  )
  if [ -z "$mirror" ]; then
    echo "build-librdkafka.sh: no Debian archive (a URI ending in /debian) in /etc/apt/sources.list{,.d}" >&2
    exit 1
  fi
  apt_dir=$base/apt
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$base/src"
  # Unstable carries only its newest upload; the pinned version usually
  # stays in testing for a while after unstable moves on.
  for suite in unstable testing; do
    echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main"
  done >"$apt_dir/sources.list"
  apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
            -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
            -o "APT::Sandbox::User=root")
  echo "fetching librdkafka $version (Debian source package, unstable or testing)"
  apt-get "${apt_opts[@]}" -qq update
  if ! apt-cache "${apt_opts[@]}" showsrc librdkafka | grep -qx "Version: $version"; then
    echo "build-librdkafka.sh: librdkafka $version is no longer in Debian unstable or testing" \
      "(they have: $(apt-cache "${apt_opts[@]}" showsrc librdkafka | sed -n 's/^Version: //p' | paste -sd' '));" \
      "pin one of those in this script (version=...)" >&2
    exit 1
  fi
  rm -rf "$src"
  # Downloaded only, then unpacked without Debian's patches: they make the
  # build regenerate sources with nanopb, which upstream's CMake build does
  # not do. What is built is the upstream release, as a source build,
  # vcpkg or Conan builds it. dpkg-source checks the files against the
  # .dsc, whose checksums apt checked against the signed index.
  (cd "$base/src" && apt-get "${apt_opts[@]}" -qq source --download-only "librdkafka=$version" >/dev/null &&
    dpkg-source --skip-patches -x "librdkafka_$version.dsc" "librdkafka-$upstream" >/dev/null)
  touch "$src/.unpacked"
fi

echo "building librdkafka $upstream ($variant) into $prefix"
build=$base/build-$variant
rm -rf "$build" "$prefix"
# Examples and tests off: only the libraries.
cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_INSTALL_PREFIX="$prefix" -DCMAKE_INSTALL_LIBDIR=lib \
  -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" \
  -DCMAKE_SHARED_LINKER_FLAGS="$sanitize" \
  -DRDKAFKA_BUILD_EXAMPLES=OFF -DRDKAFKA_BUILD_TESTS=OFF \
  -DWITH_SSL=ON -DWITH_SASL=ON -DWITH_ZSTD=ON -DWITH_ZLIB=ON -DENABLE_LZ4_EXT=ON \
  -DWITH_CURL=ON >"$build.configure.log" 2>&1 || { tail -40 "$build.configure.log" >&2; exit 1; }
cmake --build "$build" -j "${JOBS:-$(nproc)}" >"$build.log" 2>&1 || { tail -40 "$build.log" >&2; exit 1; }
cmake --install "$build" >/dev/null
echo "$want" >"$stamp"  # the variant's name and flags, as checked at the top
echo "librdkafka $upstream ($variant): $prefix"

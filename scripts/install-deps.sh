#!/usr/bin/env bash
# Installs what building and testing dispatch-kafka need, from Debian's
# packages. Idempotent: it installs only what is missing, so a second run
# changes nothing and needs no network.
set -euo pipefail

packages=(g++ cmake ninja-build pkg-config librdkafka-dev libgtest-dev libgmock-dev libsqlite3-dev
          # Developer tooling: style check, API reference, coverage report.
          clang-format clang-tidy doxygen gcovr)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} > 0)); then
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
  echo "installing: ${missing[*]}"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

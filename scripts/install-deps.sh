#!/usr/bin/env bash
# Installs what building and testing dispatch-kafka need, from Debian's
# packages. Idempotent: it installs only what is missing, so a second run
# changes nothing and needs no network.
set -euo pipefail

packages=(g++ cmake ninja-build pkg-config librdkafka-dev libgtest-dev libgmock-dev libsqlite3-dev
          # dispatch::postgres_store (libpq); its tests run a throwaway PostgreSQL server.
          libpq-dev postgresql
          # dispatch-relay's HTTP listener: prometheus-cpp's core (metric families,
          # text format) and civetweb (the server); its tests run promtool and a
          # Prometheus server from the `prometheus` package (the package's own
          # service, port 9090, is not used).
          prometheus-cpp-dev libcivetweb-dev prometheus
          # Tests only: parsing kcat's JSON output.
          nlohmann-json3-dev
          # dispatch-relay (relay/) only: its TOML configuration file.
          libtomlplusplus-dev
          # Developer tooling: style check, API reference, coverage report.
          clang-format clang-tidy doxygen gcovr)

"$(dirname "$0")/apt-install-missing.sh" "${packages[@]}"

#!/usr/bin/env bash
# The outbox demo on PostgreSQL: starts a throwaway local PostgreSQL server
# (scripts/postgres_cluster.py: loopback only, a free port, data in a fresh
# folder under /tmp, run as the unprivileged `postgres` user when this runs
# as root), runs `outbox_demo --postgres` against it, and stops the server,
# also when the demo fails. Kafka is the embedded cluster unless --brokers is
# given; extra arguments go to the demo (see --help). Builds like
# scripts/demo.sh, in build/demo.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
build=${BUILD_DIR:-build/demo}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" --target outbox_demo

server=$(mktemp -d)
trap 'python3 scripts/postgres_cluster.py stop --dir "$server" >/dev/null; rm -rf "$server"' EXIT
python3 scripts/postgres_cluster.py start --dir "$server"
conninfo=$(cat "$server/conninfo")
# libpq reads the password from PGPASSWORD; on the command line `ps` would
# show it.
PGPASSWORD=$(sed -n 's/.* password=\([^ ]*\).*/\1/p' <<<"$conninfo") \
  "$build/examples/outbox_dispatcher/outbox_demo" \
  --postgres "$(sed 's/ password=[^ ]*//' <<<"$conninfo")" "$@"

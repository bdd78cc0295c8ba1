#!/usr/bin/env bash
# The outbox demo on PostgreSQL: starts a throwaway local PostgreSQL server
# (scripts/postgres_cluster.py: loopback only, a free port, data in a fresh
# folder under /tmp, run as the unprivileged `postgres` user when this runs
# as root), runs scripts/demo.sh (which installs what is missing, builds
# and runs outbox_demo) with `--postgres` against it, and stops the server,
# also when the demo fails. Kafka is the embedded cluster unless --brokers
# is given; extra arguments go to the demo (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."

# The server script needs python3 and PostgreSQL before the demo's own
# install step would run.
scripts/install-deps.sh
server=$(mktemp -d)
trap 'python3 scripts/postgres_cluster.py stop --dir "$server" >/dev/null; rm -rf "$server"' EXIT
python3 scripts/postgres_cluster.py start --dir "$server"
conninfo=$(cat "$server/conninfo")
# libpq reads the password from PGPASSWORD; on the command line `ps` would
# show it.
PGPASSWORD=$(sed -n 's/.* password=\([^ ]*\).*/\1/p' <<<"$conninfo") \
  scripts/demo.sh --postgres "$(sed 's/ password=[^ ]*//' <<<"$conninfo")" "$@"

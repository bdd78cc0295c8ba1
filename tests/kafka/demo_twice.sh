#!/usr/bin/env bash
# demo_twice.sh DEMO CLUSTER_DIR: runs outbox_demo twice on the real cluster
# of the fixture in CLUSTER_DIR (or on DISPATCH_KAFKA_BROKERS), each on a
# fresh outbox whose row ids start at 1 again, then once more on an outbox
# file that the second run left behind with new rows added. Each run must
# end in its own "verified" line: the check reads only what that run wrote.
set -euo pipefail
demo=$1 cluster_dir=$2
brokers=${DISPATCH_KAFKA_BROKERS:-$(sed -n 's/^bootstrap=//p' "$cluster_dir/cluster.env")}
if [ -z "$brokers" ]; then
  echo "demo_twice: no bootstrap= line in $cluster_dir/cluster.env" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

run() {  # run NAME ARGS...: the demo's output in $work/NAME.log, its last line checked
  local name=$1
  shift
  if ! "$demo" --brokers "$brokers" "$@" >"$work/$name.log" 2>&1; then
    echo "demo_twice: $name failed:" >&2
    tail -n 20 "$work/$name.log" >&2
    exit 1
  fi
  local last
  last=$(tail -n 1 "$work/$name.log")
  case "$last" in
    verified:*) echo "$name: $last" ;;
    *) echo "demo_twice: $name ended in: $last" >&2; exit 1 ;;
  esac
}

run first --events 400
run second --events 400 --db "$work/outbox.db"
run resumed --events 100 --db "$work/outbox.db"
grep -q "verified: the 100 rows" "$work/resumed.log" || {
  echo "demo_twice: the resumed run should check only its 100 new rows" >&2
  exit 1
}

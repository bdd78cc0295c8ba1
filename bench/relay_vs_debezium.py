#!/usr/bin/env python3
"""B10: outbox_worker beside Debezium's outbox relay, on the same load.

Starts PostgreSQL 15 as in production (scripts/postgres_cluster.py --durable
--logical: fsync, synchronous_commit, full_page_writes on, default memory,
wal_level=logical), a Kafka cluster (scripts/kafka_cluster.py, one node or
three with replication 3), and then, one relay at a time, each in a fresh
database of its own:

  worker          examples/outbox_worker (--worker PATH), its defaults
  relay           dispatch-relay (--relay PATH), its defaults: the same
                  dispatcher and store as worker, run from a TOML file, with
                  its HTTP endpoint up (nobody scrapes it)
  base            a second outbox_worker binary (--base-worker PATH), for
                  example a build of the commit an issue started from
  debezium        Kafka Connect 4.1.1 standalone with Debezium 3.6.1's
                  PostgreSQL connector (pgoutput, snapshot.mode=no_data) and
                  the outbox EventRouter, defaults
  debezium-tuned  the same with poll.interval.ms=10 (default 500)

Each relay is started and proven streaming (a warm-up row landed in Kafka;
Debezium's slot exists) before any row of a load is inserted. The loads, in
this order, through each relay:

  many    drain 100,000 rows of 200 bytes over 2,000 keys, inserted and
          committed in one transaction
  one     drain 20,000 rows of one key, likewise
  steady  500 rows/s for 30 s, one row per transaction (pgbench -R, four
          clients, each with its own keys)

Each row carries, in its payload, the time it was inserted (the server's
clock_timestamp(), just before the commit of a one-row transaction); each
load has its own topic with message.timestamp.type=LogAppendTime, created
before the run. kcat reads what landed; latency is the append time minus the
insert time (steady) or minus the time just before the COMMIT (drains).
Drain rows/s run from that COMMIT to the last append. CPU is utime+stime from
/proc over the load (until the last row landed, plus 1 s): the relay's
process, the relay's own database backends (the client backends and WAL
senders connected before the load), the whole database server (those, the
load generator's backend and the background writers), and the brokers.
Each load also counts second copies of a row and rows that landed after a
later row of their key (insert times must not go back within a key). Peak
RSS is the relay's VmHWM over the load (reset before it). Before the
first run the brokers take 10,000 records from kcat (their JIT warms up) and
the bench waits until they are quiet; every other run goes through the sides
in the reverse order.

    bench/relay_vs_debezium.py [--worker PATH] [--relay PATH] [--base-worker PATH] [--quick]
        [--nodes 1|3] [--runs N] [--sides worker,debezium,...] [--dir DIR]

--quick is 20,000 / 5,000 rows and 10 s, one run (about 4 minutes); the
full run is two runs (about 12 minutes on 2 cores). The output is a table
per load with the sides side by side and the ratios (worker over each other
side), medians over the runs with (min-max), and one JSON line at the end.
It needs Java 17, Maven and kcat (scripts/install-kafka.sh) and fetches
Kafka Connect and Debezium once (bench/debezium/install.sh). Not run in CI.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import b10_relays as r
from bench_common import ROOT, fmt, log
from machine import machine

SIDES = ["worker", "relay", "base", "debezium", "debezium-tuned"]
LOADS = {
    "many": "drain over 2,000 keys",
    "one": "drain of one key",
    "steady": "one-row transactions at a steady rate",
}
KEYS = 2000
QUIET_S = 2.0  # before each load
SETTLE_S = 1.0  # after a load's last row landed, before its CPU is read

# (key, label, drains only); the ratio is worker / other side.
METRICS = [
    ("rows_per_s", "rows/s", False),
    ("first_ms", "COMMIT to the first row appended, ms", True),
    ("lat_p50_ms", "latency p50, ms", False),
    ("lat_p99_ms", "latency p99, ms", False),
    ("lat_max_ms", "latency max, ms", False),
    ("relay_cpu_s", "relay CPU, s", False),
    ("relay_rss_mib", "relay peak RSS in the load, MiB", False),
    ("db_relay_cpu_s", "database CPU, the relay's backends, s", False),
    ("db_cpu_s", "database CPU, whole server, s", False),
    ("broker_cpu_s", "broker CPU, s", False),
    ("inserted", "rows inserted", False),
    ("records", "records in Kafka", False),
    ("copies", "second copies of a row", False),
    ("out_of_order", "rows after a later row of their key", False),
]

COUNTS = ("inserted", "records", "copies", "out_of_order")  # no ratio for these


def percentile(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else None


def insert_sql(side, topic, key_sql, count):
    """One transaction of `count` rows; prints the time just before COMMIT (us)."""
    if side.startswith("debezium"):
        insert = (f"INSERT INTO outbox_dbz (aggregatetype, aggregateid, type, payload) "
                  f"SELECT '{topic}', {key_sql}, 'bench', {r.PAYLOAD_SQL}")
    else:
        insert = f"INSERT INTO outbox (key, topic, payload) SELECT {key_sql}, '{topic}', {r.PAYLOAD_SQL}"
    return (f"BEGIN;\n{insert} FROM generate_series(0, {count - 1}) g ORDER BY g;\n"
            "SELECT (extract(epoch from clock_timestamp()) * 1000000)::bigint;\nCOMMIT;\n")


def steady_script(side, topic, path):
    """pgbench's script: one row per transaction, a random key of the
    client's own (key mod STEADY_CLIENTS = client id), so that the rows of a
    key commit in the order of their ids."""
    if side.startswith("debezium"):
        insert = (f"INSERT INTO outbox_dbz (aggregatetype, aggregateid, type, payload) "
                  f"VALUES ('{topic}', 'k' || :k, 'bench', {r.PAYLOAD_SQL});")
    else:
        insert = f"INSERT INTO outbox (key, topic, payload) VALUES ('k' || :k, '{topic}', {r.PAYLOAD_SQL});"
    with open(path, "w") as f:
        f.write(f"\\set k :client_id + {r.STEADY_CLIENTS} * random(0, "
                f"{KEYS // r.STEADY_CLIENTS - 1})\n{insert}\n")


class Snapshot:
    def __init__(self, pg, relay, backends, brokers):
        self.relay = r.proc_cpu_s(relay.pid)
        self.backends = sum(r.proc_cpu_s(p) for p in backends)
        self.server = pg.server_cpu_s()
        self.brokers = sum(r.proc_cpu_s(p) for p in brokers)


def run_load(ctx, side, relay, db, topic, load):
    pg, kafka, sizes = ctx["pg"], ctx["kafka"], ctx["sizes"]
    time.sleep(QUIET_S)
    backends = pg.relay_backends()
    before = Snapshot(pg, relay, backends, ctx["brokers"])
    r.reset_peak_rss(relay.pid)
    commit_us = None
    if load in ("many", "one"):
        count = sizes[load]
        key_sql = f"'k' || (g % {KEYS})" if load == "many" else "'hot'"
        commit_us = int(pg.psql(db, insert_sql(side, topic, key_sql, count)))
    else:
        script = os.path.join(ctx["dir"], f"steady-{topic}.sql")
        steady_script(side, topic, script)
        out = pg.pgbench(db, script, sizes["rate"], sizes["seconds"])
        count = next(int(line.split(":")[1].split("/")[0]) for line in out.splitlines()
                     if line.startswith("number of transactions actually processed"))
        asked = sizes["rate"] * sizes["seconds"]
        if count < 0.95 * asked:
            log(f"  {side} steady: the database took only {count} of the {asked} one-row "
                "commits asked for: its commits are slower than the rate (see 'rows inserted')")
    landed = kafka.wait_for(topic, count)
    time.sleep(SETTLE_S)
    after = Snapshot(pg, relay, backends, ctx["brokers"])
    rows = kafka.records(topic)
    late, copies = r.order_and_copies(rows)
    m = {"records": len(rows), "inserted": count, "out_of_order": late, "copies": copies,
         "relay_cpu_s": after.relay - before.relay, "relay_rss_mib": r.peak_rss_mib(relay.pid),
         "db_relay_cpu_s": after.backends - before.backends,
         "db_cpu_s": after.server - before.server, "broker_cpu_s": after.brokers - before.brokers}
    if not rows:
        log(f"  {side} {load}: nothing landed in {topic} ({landed} by the offsets)")
        return m
    last_ms = max(row[0] for row in rows)
    if commit_us is not None:
        lat = [row[0] - commit_us / 1000 for row in rows]
        m["first_ms"] = min(lat)
        m["rows_per_s"] = count / max((last_ms - commit_us / 1000) / 1000, 1e-3)
    else:
        lat = [a - ins / 1000 for a, _, ins in rows]
        m["rows_per_s"] = len(rows) / max((last_ms - min(row[2] for row in rows) / 1000) / 1000,
                                          1e-3)
    m.update(lat_p50_ms=percentile(lat, 0.5), lat_p99_ms=percentile(lat, 0.99), lat_max_ms=max(lat))
    log(f"  {side} {load}: {count} rows, {len(rows)} records, {m['rows_per_s']:,.0f} rows/s, "
        f"p50 {m['lat_p50_ms']:.1f} p99 {m['lat_p99_ms']:.1f} ms; CPU relay "
        f"{m['relay_cpu_s']:.2f} s, its backends {m['db_relay_cpu_s']:.2f} s, server "
        f"{m['db_cpu_s']:.2f} s, brokers {m['broker_cpu_s']:.2f} s; RSS "
        f"{fmt(m['relay_rss_mib'], '.0f')} MiB")
    return m


def wait_until(what, check, timeout=r.READY_TIMEOUT_S, relay=None):
    end = time.monotonic() + timeout
    while not check():
        if relay is not None and not relay.alive():
            raise RuntimeError(f"{relay.name} exited while {what} (see {relay.log_dir})")
        if time.monotonic() > end:
            raise RuntimeError(f"timed out after {timeout} s: {what}")
        time.sleep(0.2)


def run_side(ctx, side, run):
    pg, kafka = ctx["pg"], ctx["kafka"]
    db = f"b10_{side.replace('-', '_')}_{run}"
    topic = lambda load: f"b10-{run}-{side}-{load}"  # noqa: E731
    pg.psql("postgres", f"CREATE DATABASE {db}")
    relay = r.Relay(side, side, os.path.join(ctx["dir"], f"{side}-{run}"))
    slot = f"b10_{side.replace('-', '_')}_{run}"
    started = time.monotonic()
    try:
        if side.startswith("debezium"):
            pg.psql(db, r.DEBEZIUM_TABLE_SQL)
            r.start_debezium(relay, ctx["debezium_dist"], pg, db, ctx["bootstrap"], slot,
                             side == "debezium-tuned", r.free_port())
            wait_until("Debezium created its slot", lambda: pg.psql(
                db, f"SELECT active FROM pg_replication_slots WHERE slot_name = '{slot}'") == "t",
                relay=relay)
        else:
            if side == "relay":
                r.start_dispatch_relay(relay, ctx["binaries"][side], pg, db, ctx["bootstrap"],
                                       r.free_port())
            else:
                r.start_worker(relay, ctx["binaries"][side], pg, db, ctx["bootstrap"])
            wait_until(f"{side} created its table", lambda: pg.psql(
                db, "SELECT to_regclass('outbox') IS NOT NULL") == "t", relay=relay)
        pg.psql(db, insert_sql(side, topic("warmup"), "'warm'", 1))
        wait_until(f"{side}'s warm-up row landed",
                   lambda: kafka.end_offsets(topic("warmup")) >= 1, relay=relay)
        life_peak = r.peak_rss_mib(relay.pid) or 0
        log(f"{side} (run {run + 1}) streaming {time.monotonic() - started:.1f} s after its start")
        for load in LOADS:
            m = run_load(ctx, side, relay, db, topic(load), load)
            ctx["results"].setdefault((load, side), []).append(m)
            life_peak = max(life_peak, m["relay_rss_mib"] or 0)
        ctx["results"].setdefault(("life", side), []).append({"relay_rss_mib": life_peak})
    finally:
        relay.stop()
        if side.startswith("debezium"):
            try:
                wait_until("the slot was released", lambda: pg.psql(
                    db, f"SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{slot}' "
                    "AND active") == "0", timeout=60)
                pg.psql(db, f"SELECT pg_drop_replication_slot('{slot}') FROM pg_replication_slots "
                        f"WHERE slot_name = '{slot}'")
            except RuntimeError as e:
                log(f"could not drop slot {slot}: {e}")


def cell(values, spec):
    vals = [v for v in values if v is not None]
    if not vals:
        return "n/a"
    med = statistics.median(vals)
    if len(vals) == 1:
        return format(med, spec)
    return f"{format(med, spec)} ({format(min(vals), spec)}-{format(max(vals), spec)})"


def median_of(results, load, side, key):
    vals = [m.get(key) for m in results.get((load, side), []) if m.get(key) is not None]
    return statistics.median(vals) if vals else None


def report(ctx, sides):
    results, summary = ctx["results"], {}
    others = [s for s in sides if s != "worker"] if "worker" in sides else []
    for load, title in LOADS.items():
        sz = ctx["sizes"]
        what = {"many": f"{sz['many']:,} rows over {KEYS:,} keys in one transaction",
                "one": f"{sz['one']:,} rows of one key in one transaction",
                "steady": f"{sz['rate']} rows/s for {sz['seconds']} s over {KEYS:,} keys"}[load]
        log(f"\n{load}: {title}, {what}")
        head = ["metric"] + sides + [f"worker/{o}" for o in others]
        log("| " + " | ".join(head) + " |")
        log("|" + " --- |" * len(head))
        for key, label, drains_only in METRICS:
            if drains_only and load == "steady":
                continue
            spec = ",.0f" if key in ("rows_per_s",) + COUNTS else ".2f" if "cpu" in key else ".1f"
            row = [label] + [cell([m.get(key) for m in results.get((load, s), [])], spec)
                             for s in sides]
            for s in sides:
                summary[f"{load}_{key}_{s.replace('-', '_')}"] = median_of(results, load, s, key)
            for o in others:
                if key in COUNTS:
                    row.append("")
                    continue
                a, b = median_of(results, load, "worker", key), median_of(results, load, o, key)
                ratio = a / b if a is not None and b else None
                summary[f"{load}_{key}_ratio_{o.replace('-', '_')}"] = ratio
                row.append(fmt(ratio, ".2f"))
            log("| " + " | ".join(row) + " |")
    log("\nrelay peak RSS over its life (start, warm-up and the three loads), MiB: " + ", ".join(
        f"{s} {cell([m['relay_rss_mib'] for m in results.get(('life', s), [])], '.0f')}"
        for s in sides))
    for s in sides:
        summary[f"life_rss_mib_{s.replace('-', '_')}"] = median_of(results, "life", s,
                                                                   "relay_rss_mib")
    return summary


def json_line(obj):
    def num(v):
        return "null" if v is None else (f"{v:.3f}" if isinstance(v, float) else json.dumps(v))
    return "{" + ", ".join(f"{json.dumps(k)}: {num(v)}" for k, v in obj.items()) + "}"


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", default=os.path.join(
        ROOT, "build", "release-rdkafka-debian", "examples", "outbox_worker"),
        help="the outbox_worker binary of side 'worker' (default %(default)s)")
    parser.add_argument("--relay", default=os.path.join(
        ROOT, "build", "release-rdkafka-debian", "relay", "dispatch-relay"),
        help="the dispatch-relay binary of side 'relay' (default %(default)s)")
    parser.add_argument("--base-worker", default=None,
                        help="a second outbox_worker binary, side 'base' (for example a build "
                             "of the commit an issue started from)")
    parser.add_argument("--quick", action="store_true", help="smaller loads, one run")
    parser.add_argument("--runs", type=int, default=None, help="runs of every side (default 2, 1 quick)")
    parser.add_argument("--nodes", type=int, choices=[1, 3], default=1,
                        help="Kafka nodes; with 3, replication 3 (min.insync.replicas 2)")
    parser.add_argument("--partitions", type=int, default=6, help="per topic (default %(default)s)")
    parser.add_argument("--sides", default=None,
                        help=f"comma-separated, of {','.join(SIDES)} (default: all given)")
    parser.add_argument("--dir", default=None, help="where logs go (default: a fresh /tmp folder)")
    parser.add_argument("--kafka-dist", default=os.path.join(ROOT, "build", "kafka-dist"))
    parser.add_argument("--debezium-dist", default=os.path.join(ROOT, "build", "debezium-dist"))
    args = parser.parse_args()
    sides = args.sides.split(",") if args.sides else [
        s for s in SIDES if s != "base" or args.base_worker]
    for s in sides:
        if s not in SIDES:
            sys.exit(f"--sides: unknown side '{s}' (allowed: {', '.join(SIDES)})")
    if "base" in sides and not args.base_worker:
        sys.exit("--sides: side 'base' needs --base-worker PATH")
    binaries = {"worker": os.path.abspath(args.worker), "relay": os.path.abspath(args.relay),
                "base": os.path.abspath(args.base_worker) if args.base_worker else None}
    for s, flag, target in (("worker", "worker", "outbox_worker"),
                            ("relay", "relay", "dispatch-relay"),
                            ("base", "base-worker", "outbox_worker")):
        if s in sides and not os.access(binaries[s], os.X_OK):
            sys.exit(f"--{flag}: {binaries[s]} is not an executable (build the {target} target)")
    if args.runs is not None and args.runs < 1:
        sys.exit(f"--runs: {args.runs} is not allowed (give 1 or more)")
    if args.partitions < 1:
        sys.exit(f"--partitions: {args.partitions} is not allowed (give 1 or more)")
    runs = args.runs or (1 if args.quick else 2)
    sizes = ({"many": 20000, "one": 5000, "rate": 500, "seconds": 10} if args.quick else
             {"many": 100000, "one": 20000, "rate": 500, "seconds": 30})
    work = os.path.abspath(args.dir or tempfile.mkdtemp(prefix="dispatch-b10-"))
    os.makedirs(work, exist_ok=True)
    info = machine()
    load_start = os.getloadavg()
    log(f"B10 on {info['nproc']} cores ({info['cpu']}), commit {info['commit']}, load average "
        f"{load_start[0]:.2f}; logs in {work}")
    for s in sides:
        log(f"  {s}: " + (binaries[s] if s in binaries else
                          "Kafka Connect standalone + Debezium, " +
                          ("poll.interval.ms=10" if s == "debezium-tuned" else "defaults")))

    pg_dir, kafka_dir = os.path.join(work, "postgres"), os.path.join(work, "kafka")
    scripts = os.path.join(ROOT, "scripts")
    ctx = {"dir": work, "sizes": sizes, "binaries": binaries, "results": {},
           "debezium_dist": os.path.abspath(args.debezium_dist)}
    try:
        if any(s.startswith("debezium") for s in sides):
            r.install_debezium(ctx["debezium_dist"])
        subprocess.run([sys.executable, os.path.join(scripts, "postgres_cluster.py"), "start",
                        "--dir", pg_dir, "--durable", "--logical"], check=True)
        subprocess.run([sys.executable, os.path.join(scripts, "kafka_cluster.py"), "start",
                        "--dir", kafka_dir, "--nodes", str(args.nodes), "--dist",
                        args.kafka_dist], check=True)
        with open(os.path.join(kafka_dir, "cluster.json")) as f:
            kstate = json.load(f)
        ctx.update(pg=r.Postgres(pg_dir), bootstrap=kstate["bootstrap"],
                   brokers=[n["pid"] for n in kstate["nodes"]],
                   kafka=r.Kafka(kstate["bootstrap"], args.partitions))
        log(ctx["pg"].psql("postgres", "SELECT version()").split(" on ")[0] + ", " +
            ctx["pg"].psql("postgres", "SELECT string_agg(name || '=' || setting, ' ' ORDER BY "
                           "name) FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit',"
                           " 'full_page_writes', 'wal_level', 'shared_buffers')"))
        topics = [f"b10-{run}-{s}-{load}" for run in range(runs) for s in sides
                  for load in list(LOADS) + ["warmup"]] + ["b10-broker-warmup"]
        r.create_topics(os.path.abspath(args.kafka_dist), ctx["bootstrap"], args.partitions,
                        args.nodes, topics)
        r.warm_up_brokers(ctx["bootstrap"], "b10-broker-warmup")
        r.wait_quiet(ctx["brokers"], "the brokers")
        started = time.monotonic()
        for run in range(runs):
            # Every other run in the reverse order: the side that runs first
            # meets a broker that has served less.
            for s in (sides if run % 2 == 0 else list(reversed(sides))):
                run_side(ctx, s, run)
        log(f"\nall runs took {time.monotonic() - started:.0f} s")
    finally:
        subprocess.run([sys.executable, os.path.join(scripts, "kafka_cluster.py"), "stop",
                        "--dir", kafka_dir], check=False)
        subprocess.run([sys.executable, os.path.join(scripts, "postgres_cluster.py"), "stop",
                        "--dir", pg_dir], check=False)
    summary = report(ctx, sides)
    load_end = os.getloadavg()
    log(f"load average at the start {load_start[0]:.2f}, at the end {load_end[0]:.2f} "
        f"(1 min); runs {runs}; Kafka nodes {args.nodes}")
    out = {"benchmark": "relay_vs_debezium", "commit": info["commit"], "quick": args.quick,
           "runs": runs, "nodes": args.nodes, "partitions": args.partitions,
           "loadavg_start": load_start[0], "loadavg_end": load_end[0],
           "worker": binaries["worker"] if "worker" in sides else None}
    out.update(summary)
    print(json_line(out), flush=True)


if __name__ == "__main__":
    main()

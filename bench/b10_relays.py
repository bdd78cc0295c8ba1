"""B10's moving parts (bench/relay_vs_debezium.py): PostgreSQL through psql
and pgbench, the two relays (outbox_worker, and Debezium's PostgreSQL
connector with the outbox EventRouter in Kafka Connect standalone), what
landed in Kafka (kcat), and CPU and memory from /proc.

Everything runs on this machine and one clock: the row's insert time
(PostgreSQL's clock_timestamp()) and the broker's append time
(LogAppendTime) are both read from the system clock."""

import os
import signal
import socket
import subprocess
import time

from bench_common import ROOT, log

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAYLOAD_BYTES = 200
READY_TIMEOUT_S = 180
# pgbench clients of the steady load: a one-row transaction waits for its
# commit to reach the disk (a few ms here, more when the machine is busy), so
# one client alone falls behind 500 rows/s.
STEADY_CLIENTS = 4
STOP_TIMEOUT_S = 30

# The row's payload: the insert time in microseconds since the epoch, read
# from the server's clock as the row is inserted, then ':' and padding to
# 200 bytes. The reader of the topic takes the number back.
PAYLOAD_SQL = ("convert_to(rpad((extract(epoch from clock_timestamp()) * 1000000)::bigint::text"
               f" || ':', {PAYLOAD_BYTES}, 'x'), 'UTF8')")

# Debezium's outbox table, with the columns that the EventRouter reads by
# default (id, aggregatetype, aggregateid, type, payload). aggregatetype
# routes the row to a topic (route.topic.replacement=${routedByValue}) and
# aggregateid is the record's key.
DEBEZIUM_TABLE_SQL = """
CREATE TABLE outbox_dbz (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  aggregatetype text NOT NULL,
  aggregateid   text NOT NULL,
  type          text NOT NULL,
  payload       bytea
)"""


class Postgres:
    """The benchmark's server: psql and pgbench with the password in the
    environment (never on a command line)."""

    def __init__(self, cluster_dir):
        with open(os.path.join(cluster_dir, "conninfo")) as f:
            self.params = dict(kv.split("=", 1) for kv in f.read().split())
        import json
        with open(os.path.join(cluster_dir, "cluster.json")) as f:
            state = json.load(f)
        self.bindir, self.postmaster = state["bindir"], state["pid"]
        self.env = dict(os.environ, PGHOST=self.params["host"], PGPORT=self.params["port"],
                        PGUSER=self.params["user"], PGPASSWORD=self.params["password"])

    def conninfo(self, db):
        """For a relay's command line: libpq takes the password from PGPASSWORD."""
        return f"host={self.params['host']} port={self.params['port']} " \
               f"user={self.params['user']} dbname={db}"

    def psql(self, db, sql, timeout=600):
        out = subprocess.run([os.path.join(self.bindir, "psql"), "-X", "-q", "-A", "-t",
                              "-v", "ON_ERROR_STOP=1", "-d", db], input=sql, env=self.env,
                             capture_output=True, text=True, timeout=timeout, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"psql on {db} failed: {out.stderr.strip()}\n{sql[:300]}")
        return out.stdout.strip()

    def pgbench(self, db, script, rate, seconds):
        """STEADY_CLIENTS clients, one transaction per row, `rate` rows/s in
        all (pgbench -R: transactions start as a Poisson process of that
        rate) for `seconds`."""
        out = subprocess.run([os.path.join(self.bindir, "pgbench"), "-n", "-c",
                              str(STEADY_CLIENTS), "-j", "1",
                              "-R", str(rate), "-T", str(seconds), "-f", script, db],
                             env=self.env, capture_output=True, text=True,
                             timeout=seconds + 120, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"pgbench failed: {out.stderr.strip()}")
        return out.stdout

    def relay_backends(self):
        """The pids of the client backends and WAL senders now connected
        (the relay's, when called between loads), but this query's own."""
        out = self.psql("postgres", "SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
                        " AND backend_type IN ('client backend', 'walsender')")
        return [int(p) for p in out.split()]

    def server_cpu_s(self):
        """CPU of the whole server so far: the postmaster, its live children
        and the children that have exited (cutime, cstime)."""
        total = proc_cpu_s(self.postmaster, children=True)
        for pid in children_of(self.postmaster):
            total += proc_cpu_s(pid)
        return total


def proc_stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def proc_cpu_s(pid, children=False):
    """utime + stime of a process (and of its waited-for children), 0 once gone."""
    try:
        s = proc_stat(pid)
    except OSError:
        return 0.0
    ticks = int(s[11]) + int(s[12]) + ((int(s[13]) + int(s[14])) if children else 0)
    return ticks / CLK_TCK


def children_of(ppid):
    kids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if int(proc_stat(name)[1]) == ppid:
                    kids.append(int(name))
            except (OSError, IndexError, ValueError):
                pass
    return kids


def reset_peak_rss(pid):
    """Resets VmHWM (Linux 4.0 and later), so that it then tells the peak
    of what follows."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_rss_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


class Kafka:
    """The cluster through kcat: what landed in a topic, with append times."""

    def __init__(self, bootstrap, partitions):
        self.bootstrap, self.partitions = bootstrap, partitions

    def end_offsets(self, topic):
        args = ["kcat", "-Q", "-b", self.bootstrap]
        for p in range(self.partitions):
            args += ["-t", f"{topic}:{p}:-1"]
        out = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
        total = 0
        for line in out.stdout.splitlines():  # "topic [p] offset N"
            parts = line.split()
            if len(parts) >= 4 and parts[-2] == "offset":
                total += int(parts[-1])
        return total

    def wait_for(self, topic, count, stall_s=60, limit_s=900):
        """Waits until `count` records are in `topic`, or none came for
        stall_s. Returns how many there are."""
        start = last_change = time.monotonic()
        seen = 0
        while True:
            n = self.end_offsets(topic)
            now = time.monotonic()
            if n != seen:
                seen, last_change = n, now
            if n >= count or now - last_change > stall_s or now - start > limit_s:
                return n
            time.sleep(0.2)

    def records(self, topic):
        """(append time in ms, key, insert time in us) of each record, read
        from the start of the topic by kcat, an independent client; the
        records of a partition in offset order."""
        out = subprocess.run(["kcat", "-C", "-b", self.bootstrap, "-t", topic, "-o", "beginning",
                              "-e", "-q", "-f", "%T %k %s\\n"], capture_output=True, timeout=600,
                             check=False)
        rows = []
        for line in out.stdout.splitlines():
            parts = line.split(b" ", 2)
            if len(parts) == 3 and b":" in parts[2]:
                rows.append((int(parts[0]), parts[1], int(parts[2].split(b":", 1)[0])))
        return rows


def order_and_copies(rows):
    """(records that came after a later row of their key, second copies):
    rows of a key are inserted in order, so their insert times must not go
    back within the key's partition."""
    last, seen, late, copies = {}, set(), 0, 0
    for _, key, inserted in rows:
        if (key, inserted) in seen:
            copies += 1
            continue
        seen.add((key, inserted))
        if inserted < last.get(key, 0):
            late += 1
        last[key] = max(last.get(key, 0), inserted)
    return late, copies


class Relay:
    """A relay process: started, proven streaming (a warm-up row landed),
    stopped by its own pid."""

    def __init__(self, name, kind, log_dir):
        self.name, self.kind, self.log_dir = name, kind, log_dir
        self.proc = None
        os.makedirs(log_dir, exist_ok=True)

    @property
    def pid(self):
        return self.proc.pid

    def launch(self, cmd, env=None):
        out = open(os.path.join(self.log_dir, "stdout.log"), "ab")
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, start_new_session=True)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if not self.alive():
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_worker(relay, binary, pg, db, bootstrap):
    """outbox_worker with its defaults; it migrates its outbox table at start."""
    relay.launch([binary, "--postgres", pg.conninfo(db), "--brokers", bootstrap], env=pg.env)


def start_dispatch_relay(relay, binary, pg, db, bootstrap, http_port):
    """dispatch-relay with its defaults but for what it must be told: the
    database, the brokers and a free port for its HTTP endpoint. It migrates
    its outbox table at start; the password goes through the environment."""
    config = os.path.join(relay.log_dir, "dispatch-relay.toml")
    with open(config, "w") as f:
        f.write(f'[store]\nconninfo = "{pg.conninfo(db)}"\n'
                f'[kafka]\nbrokers = ["{bootstrap}"]\n'
                f'[http]\nlisten = "127.0.0.1:{http_port}"\n')
    relay.launch([binary, "--config", config],
                 env=dict(pg.env, DISPATCH_RELAY_STORE_PASSWORD=pg.params["password"]))


# Debezium with its defaults, and with its latency settings tuned down:
# poll.interval.ms is how long the connector's poll waits for a batch
# (default 500 ms).
DEBEZIUM_TUNED = {"poll.interval.ms": "10"}

# What bin/connect-standalone.sh and bin/kafka-run-class.sh give the JVM.
CONNECT_JVM = ["-Xms256M", "-Xmx2G", "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
               "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent",
               "-XX:MaxInlineLevel=15", "-Djava.awt.headless=true"]

CONNECT_LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
"""


def start_debezium(relay, dist, pg, db, bootstrap, slot, tuned, rest_port):
    """Kafka Connect standalone (offsets in a file) with Debezium's
    PostgreSQL connector: pgoutput, a publication of outbox_dbz only, no
    snapshot, the outbox EventRouter, keys as strings and values as the
    payload's bytes."""
    d = relay.log_dir
    worker = {
        "bootstrap.servers": bootstrap,
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter": "org.apache.kafka.connect.converters.ByteArrayConverter",
        "offset.storage.file.filename": os.path.join(d, "offsets"),
        "listeners": f"http://127.0.0.1:{rest_port}",
    }
    connector = {
        "name": "b10-outbox",
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "tasks.max": "1",
        "plugin.name": "pgoutput",
        "database.hostname": pg.params["host"],
        "database.port": pg.params["port"],
        "database.user": pg.params["user"],
        "database.password": pg.params["password"],
        "database.dbname": db,
        "topic.prefix": "b10",
        "table.include.list": "public.outbox_dbz",
        "publication.autocreate.mode": "filtered",
        "slot.name": slot,
        "snapshot.mode": "no_data",
        "transforms": "outbox",
        "transforms.outbox.type": "io.debezium.transforms.outbox.EventRouter",
        "transforms.outbox.route.topic.replacement": "${routedByValue}",
    }
    if tuned:
        connector.update(DEBEZIUM_TUNED)
    files = {}
    for name, props in (("worker.properties", worker), ("connector.properties", connector)):
        path = os.path.join(d, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds the password
        with os.fdopen(fd, "w") as f:
            f.write("".join(f"{k}={v}\n" for k, v in props.items()))
        files[name] = path
    log4j = os.path.join(d, "log4j2.properties")
    with open(log4j, "w") as f:
        f.write(CONNECT_LOG4J2.format(log=os.path.join(d, "connect.log")))
    relay.launch(["java"] + CONNECT_JVM + [f"-Dlog4j2.configurationFile={log4j}", "-cp",
                  os.path.join(dist, "libs", "*"), "org.apache.kafka.connect.cli.ConnectStandalone",
                  files["worker.properties"], files["connector.properties"]])


def free_port():
    """A loopback port free now, for Connect's REST listener."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def warm_up_brokers(bootstrap, topic, count=10000):
    """Records of 200 bytes to `topic` from kcat, one per request, so that
    the brokers' JIT has compiled the produce path before the first relay."""
    started = time.monotonic()
    data = "".join(f"{i:0200d}\n" for i in range(count))
    subprocess.run(["kcat", "-P", "-b", bootstrap, "-t", topic, "-X", "linger.ms=0",
                    "-X", "batch.num.messages=1"], input=data, text=True, check=True, timeout=300)
    log(f"brokers warmed up with {count} records in {time.monotonic() - started:.1f} s")


def wait_quiet(pids, what, busy_s=0.05, limit_s=60):
    """Waits until `pids` use under busy_s of CPU a second each (a JVM's JIT
    compiles for a while after a warm-up), at most limit_s."""
    started = time.monotonic()
    last = sum(proc_cpu_s(p) for p in pids)
    while time.monotonic() - started < limit_s:
        time.sleep(1)
        now = sum(proc_cpu_s(p) for p in pids)
        if now - last < busy_s * len(pids):
            log(f"{what} quiet after {time.monotonic() - started:.0f} s")
            return
        last = now
    log(f"{what} still busy after {limit_s} s")


def install_debezium(dist):
    subprocess.run([os.path.join(ROOT, "bench", "debezium", "install.sh"), dist], check=True)


def create_topics(kafka_dist, bootstrap, partitions, replication, topics):
    started = time.monotonic()
    subprocess.run(["java", "-cp", os.path.join(kafka_dist, "libs", "*"),
                    os.path.join(ROOT, "bench", "debezium", "CreateTopics.java"), bootstrap,
                    str(partitions), str(replication)] + topics, check=True, timeout=300)
    log(f"created {len(topics)} topics (LogAppendTime) in {time.monotonic() - started:.1f} s")

#!/usr/bin/env python3
"""Starts and stops a throwaway Apache Kafka cluster (KRaft, loopback only) for
the real-Kafka tests. The CTest fixtures call it; so can a person.

  kafka_cluster.py start   --dir DIR --nodes 1|3 [--dist DIST] [--secure] [--server scram]
  kafka_cluster.py stop    --dir DIR
  kafka_cluster.py signal  --dir DIR --node ID --signal KILL|STOP|CONT|TERM
  kafka_cluster.py restart --dir DIR --node ID
  kafka_cluster.py batches --dir DIR --node ID --topic T --partition P [P ...]

Every node is broker and controller at once. Ports are picked free at start.
DIR/cluster.json describes the running cluster (bootstrap, node ids, ports,
pids) for the tests; DIR/node-ID/server.log keeps each node's log. Processes
are stopped by their own pids, never by name.

batches lists the record batches that node ID holds for the partitions, one
line each: "partition baseOffset lastOffset producerId producerEpoch", read
from its log segments with Kafka's own DumpLogSegments.

With DISPATCH_KAFKA_BROKERS set, start and stop do nothing: the tests use that
cluster instead.

--secure (one node) adds TLS and SASL listeners beside the plaintext one that
the helpers use: SSL, SASL_SSL (SCRAM-SHA-512 and PLAIN) and SSL_ALT, whose
certificate names another host (for hostname verification). Certificates (a
CA, a second CA that signed nothing the broker shows, the broker's, a client's
with an encrypted key) and passwords are made at start in DIR/tls; the
SCRAM user is created when the storage is formatted. ACLs are on
(StandardAuthorizer) with a PLAIN user that has none and one that has only
what a test grants it. cluster.env then names the listeners, the files and
the credentials for the tests. That setup lives in scripts/kafka_security.py.

--server scram runs the second Kafka version pinned in scripts/kafka/pom.xml
(kafka.scram.version) from DIST instead of the first.
"""

import argparse
import base64
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import uuid

# The security module sits beside this script; a __pycache__ of it would land
# in the source tree on every test run.
sys.dont_write_bytecode = True
import kafka_security  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCHES_TIMEOUT_S = 300
READY_TIMEOUT_S = 120
STOP_TIMEOUT_S = 20

LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""


PORT_FLOOR = 10000  # lowest port handed to a node
_handed_out = set()


def ephemeral_low():
    """The low end of the kernel's ephemeral port range (bind to port 0 and
    outgoing connections take their ports from it)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def free_port():
    """A loopback port that is free now and lies below the ephemeral range.
    A node binds its ports seconds later, once its JVM is up; meanwhile the
    tests running beside the fixture open embedded clusters on port 0, which
    the kernel may give a port picked from the ephemeral range."""
    low = ephemeral_low()
    for _ in range(200 if low > PORT_FLOOR + 1000 else 0):
        port = random.randrange(PORT_FLOOR, low)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cluster_id():
    # Kafka's Uuid in its base64url form; Kafka refuses one that starts with '-'.
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def server_properties(node, nodes, cluster_dir, extra=None):
    n = len(nodes)
    min_isr = 2 if n >= 3 else 1
    voters = ",".join(f"{m['id']}@127.0.0.1:{m['controller_port']}" for m in nodes)
    props = {
        "process.roles": "broker,controller",
        "node.id": node["id"],
        "controller.quorum.voters": voters,
        "listeners": f"PLAINTEXT://127.0.0.1:{node['port']},CONTROLLER://127.0.0.1:{node['controller_port']}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node['port']}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": os.path.join(cluster_dir, f"node-{node['id']}", "data"),
        "auto.create.topics.enable": "false",
        "unclean.leader.election.enable": "false",
        "num.partitions": 1,
        "default.replication.factor": n,
        "min.insync.replicas": min_isr,
        "offsets.topic.replication.factor": n,
        "offsets.topic.num.partitions": 1,
        "transaction.state.log.replication.factor": n,
        "transaction.state.log.min.isr": min_isr,
        "share.coordinator.state.topic.replication.factor": n,
        "share.coordinator.state.topic.min.isr": min_isr,
        "group.initial.rebalance.delay.ms": 0,
        # A killed broker is fenced (and its partitions move) after the session
        # timeout; the default 9 s would make the failover test slow.
        "broker.heartbeat.interval.ms": 500,
        "broker.session.timeout.ms": 3000,
        "replica.lag.time.max.ms": 5000,
        "num.network.threads": 2,
        "num.io.threads": 4,
        "log.flush.interval.messages": 9223372036854775807,
    }
    props.update(extra or {})
    return "".join(f"{k}={v}\n" for k, v in props.items())


def java_cmd(dist, node_dir, main, args):
    """A JVM running `main`; it logs as node_dir/log4j2.properties says, or
    with log4j2's defaults (errors to the console) when node_dir is None."""
    logging = [] if node_dir is None else [
        f"-Dlog4j2.configurationFile={os.path.join(node_dir, 'log4j2.properties')}"]
    return [
        "java", "-Xms256m", "-Xmx512m", "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
    ] + logging + ["-cp", os.path.join(dist, "libs", "*"), main] + args


def tail(path, lines=60):
    try:
        with open(path, "rb") as f:
            data = f.read().decode(errors="replace").splitlines()
        return "\n".join(data[-lines:])
    except OSError as e:
        return f"(no log: {e})"


def launch(state, node):
    node_dir = os.path.join(state["dir"], f"node-{node['id']}")
    out = open(os.path.join(node_dir, "stdout.log"), "ab")
    proc = subprocess.Popen(
        java_cmd(state["dist"], node_dir, "kafka.Kafka", [os.path.join(node_dir, "server.properties")]),
        stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    node["pid"] = proc.pid


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie of ours (we never wait on a detached node) counts as dead.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def registered_brokers(bootstrap):
    """Broker ids that the cluster's metadata lists, or None if not reachable."""
    try:
        out = subprocess.run(["kcat", "-L", "-J", "-b", bootstrap, "-m", "3"],
                             capture_output=True, timeout=10, check=False)
    except subprocess.TimeoutExpired:
        return None
    if out.returncode != 0:
        return None
    try:
        return sorted(b["id"] for b in json.loads(out.stdout)["brokers"])
    except (ValueError, KeyError):
        return None


def wait_ready(state, node_ids, timeout_s=READY_TIMEOUT_S):
    """Waits until every node in node_ids is alive and listed in the metadata
    that each of them serves."""
    end = time.monotonic() + timeout_s
    want = sorted(n["id"] for n in state["nodes"])
    while True:
        for n in state["nodes"]:
            if n["id"] in node_ids and not alive(n["pid"]):
                fail(state, n, "exited during start-up")
        ok = all(registered_brokers(f"127.0.0.1:{n['port']}") == want
                 for n in state["nodes"] if n["id"] in node_ids)
        if ok:
            return
        if time.monotonic() > end:
            for n in state["nodes"]:
                if n["id"] in node_ids:
                    fail(state, n, f"not ready after {timeout_s} s", stop_cluster=False)
            stop(state)
            sys.exit(1)
        time.sleep(0.5)


def fail(state, node, why, stop_cluster=True):
    log = os.path.join(state["dir"], f"node-{node['id']}", "server.log")
    out = os.path.join(state["dir"], f"node-{node['id']}", "stdout.log")
    print(f"kafka node {node['id']} {why}; tail of {log}:\n{tail(log)}\n"
          f"tail of {out}:\n{tail(out, 20)}", file=sys.stderr)
    if stop_cluster:
        stop(state)
        sys.exit(1)


def save(state):
    path = os.path.join(state["dir"], "cluster.json")
    with open(path + ".tmp", "w") as f:
        json.dump(state, f, indent=2)
    os.replace(path + ".tmp", path)
    # The same for the C++ tests, which read key=value lines.
    env = os.path.join(state["dir"], "cluster.env")
    with open(env + ".tmp", "w") as f:
        f.write(f"bootstrap={state['bootstrap']}\n")
        f.write("nodes=" + ",".join(str(n["id"]) for n in state["nodes"]) + "\n")
        f.write(f"kafka_version={state['kafka_version']}\n")
        for k, v in state.get("secure", {}).items():
            f.write(f"{k}={v}\n")
    os.replace(env + ".tmp", env)


def load(cluster_dir):
    with open(os.path.join(cluster_dir, "cluster.json")) as f:
        return json.load(f)


def cmd_start(args):
    # The jars are needed even for an existing cluster: a test asks Kafka's
    # Java client which partition a key belongs to.
    dist = os.path.abspath(args.dist)
    subprocess.run([os.path.join(ROOT, "scripts", "install-kafka.sh"), dist] +
                   ([args.server] if args.server else []), check=True, stdout=sys.stderr)
    if os.environ.get("DISPATCH_KAFKA_BROKERS"):
        print(f"DISPATCH_KAFKA_BROKERS={os.environ['DISPATCH_KAFKA_BROKERS']}: using that cluster")
        return
    cluster_dir = os.path.abspath(args.dir)
    if os.path.exists(os.path.join(cluster_dir, "cluster.json")):
        # A previous run that was not cleaned up (for example an interrupted
        # ctest): stop its processes before reusing the folder.
        stop(load(cluster_dir))
    subprocess.run(["rm", "-rf", cluster_dir], check=True)
    os.makedirs(cluster_dir)
    nodes = [{"id": i, "port": free_port(), "controller_port": free_port(), "pid": 0}
             for i in range(1, args.nodes + 1)]
    if args.secure and args.nodes != 1:
        sys.exit("--secure starts one node")
    with open(os.path.join(dist, "VERSION")) as f:
        version = f.read().strip()
    state = {"dir": cluster_dir, "dist": dist, "kafka_version": version,
             "cluster_id": cluster_id(), "nodes": nodes,
             "bootstrap": ",".join(f"127.0.0.1:{n['port']}" for n in nodes)}
    extra, format_extra = {}, []
    if args.secure:
        n = nodes[0]
        n.update(ssl_port=free_port(), sasl_ssl_port=free_port(), ssl_alt_port=free_port())
        extra, format_extra, state["secure"] = kafka_security.setup(n, cluster_dir)
    formats = []
    for n in nodes:
        node_dir = os.path.join(cluster_dir, f"node-{n['id']}")
        os.makedirs(node_dir)
        with open(os.path.join(node_dir, "server.properties"), "w") as f:
            f.write(server_properties(n, nodes, cluster_dir, extra))
        with open(os.path.join(node_dir, "log4j2.properties"), "w") as f:
            f.write(LOG4J2.format(log=os.path.join(node_dir, "server.log")))
        formats.append(subprocess.Popen(
            java_cmd(dist, node_dir, "kafka.tools.StorageTool",
                     ["format", "-t", state["cluster_id"], "-c",
                      os.path.join(node_dir, "server.properties")] + format_extra),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    for p in formats:
        out, _ = p.communicate(timeout=READY_TIMEOUT_S)
        if p.returncode != 0:
            print(f"kafka storage format failed:\n{out.decode(errors='replace')}", file=sys.stderr)
            sys.exit(1)
    started = time.monotonic()
    for n in nodes:
        launch(state, n)
    save(state)
    wait_ready(state, {n["id"] for n in nodes})
    print(f"kafka {version}, {len(nodes)} node(s) ready at {state['bootstrap']} "
          f"in {time.monotonic() - started:.1f} s; logs in {cluster_dir}")


def stop(state):
    pids = [n["pid"] for n in state["nodes"] if n.get("pid") and alive(n["pid"])]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGCONT)  # a frozen node cannot handle TERM
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    end = time.monotonic() + STOP_TIMEOUT_S
    while any(alive(p) for p in pids) and time.monotonic() < end:
        time.sleep(0.2)
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def cmd_stop(args):
    if os.environ.get("DISPATCH_KAFKA_BROKERS"):
        return
    path = os.path.join(os.path.abspath(args.dir), "cluster.json")
    if not os.path.exists(path):
        return
    stop(load(os.path.abspath(args.dir)))
    print(f"kafka stopped; logs left in {os.path.abspath(args.dir)}")


def node_of(state, node_id):
    for n in state["nodes"]:
        if n["id"] == node_id:
            return n
    sys.exit(f"no node {node_id} in {state['dir']}")


def cmd_signal(args):
    state = load(os.path.abspath(args.dir))
    n = node_of(state, args.node)
    os.kill(n["pid"], getattr(signal, "SIG" + args.signal))


def cmd_restart(args):
    state = load(os.path.abspath(args.dir))
    n = node_of(state, args.node)
    if alive(n["pid"]):
        stop({"nodes": [n]})
    launch(state, n)
    save(state)
    if not args.no_wait:
        wait_ready(state, {n["id"]})


def cmd_batches(args):
    state = load(os.path.abspath(args.dir))
    n = node_of(state, args.node)
    data_dir = os.path.join(state["dir"], f"node-{n['id']}", "data")
    segments = {}  # segment file -> partition
    for partition in args.partition:
        part_dir = os.path.join(data_dir, f"{args.topic}-{partition}")
        if not os.path.isdir(part_dir):
            sys.exit(f"node {n['id']} holds no {args.topic}-{partition} ({part_dir})")
        for f in sorted(os.listdir(part_dir)):
            if f.endswith(".log"):
                segments[os.path.join(part_dir, f)] = partition
    # One JVM for every segment, with its own logging: not the node's, whose
    # file is the broker's server.log.
    try:
        out = subprocess.run(
            java_cmd(state["dist"], None, "kafka.tools.DumpLogSegments", ["--files", ",".join(segments)]),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=False,
            timeout=BATCHES_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        sys.exit(f"DumpLogSegments did not finish in {BATCHES_TIMEOUT_S} s")
    text = out.stdout.decode(errors="replace")
    if out.returncode != 0:
        sys.exit(f"DumpLogSegments failed ({out.returncode}):\n{text[-2000:]}")
    partition = None
    for line in text.splitlines():
        if line.startswith("Dumping "):
            partition = segments.get(line[len("Dumping "):].strip())
            continue
        if not line.startswith("baseOffset:"):
            continue
        if partition is None:
            sys.exit(f"DumpLogSegments printed a batch before naming its file:\n{line}")
        field = dict(re.findall(r"(\w+): (\S+)", line))
        print(partition, field["baseOffset"], field["lastOffset"], field["producerId"],
              field["producerEpoch"])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("start")
    p.add_argument("--dir", required=True)
    p.add_argument("--nodes", type=int, default=1)
    p.add_argument("--dist", default=os.path.join(ROOT, "build", "kafka-dist"))
    p.add_argument("--secure", action="store_true")
    p.add_argument("--server", choices=["scram"],
                   help="the second pinned Kafka (kafka.scram.version in scripts/kafka/pom.xml)")
    p.set_defaults(func=cmd_start)
    p = sub.add_parser("stop")
    p.add_argument("--dir", required=True)
    p.set_defaults(func=cmd_stop)
    p = sub.add_parser("signal")
    p.add_argument("--dir", required=True)
    p.add_argument("--node", type=int, required=True)
    p.add_argument("--signal", choices=["KILL", "STOP", "CONT", "TERM"], required=True)
    p.set_defaults(func=cmd_signal)
    p = sub.add_parser("restart")
    p.add_argument("--dir", required=True)
    p.add_argument("--node", type=int, required=True)
    p.add_argument("--no-wait", action="store_true")
    p.set_defaults(func=cmd_restart)
    p = sub.add_parser("batches")
    p.add_argument("--dir", required=True)
    p.add_argument("--node", type=int, required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--partition", type=int, nargs="+", required=True)
    p.set_defaults(func=cmd_batches)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()

"""The Go original beside the C++ benchmarks, for bench/run.py.

Builds bench/kafka_go (segmentio/kafka-go v0.4.50, publishing the way the
original Go package did) with `go build` into <build>/bench/kafka_go when `go`
is on PATH, and runs it with 1 and 16 publishers, each with kafka-go's default
batch timeout (1 s, as the original ran) and with 1 ms (as a tuned user
would). The C++ side of the same shape is B1 (one blocking publisher) and B3
(16 threads), so the report sets kafka-go, raw librdkafka and dispatch-kafka
side by side.

Without --brokers the runs go to librdkafka's mock cluster, the one the C++
benchmarks embed, hosted in a child process (python ctypes on librdkafka) so
that the Go process reaches it over TCP and its CPU figure is its own. kafka-go
publishes to it like to a broker, but the mock names no controller and does
not serve CreateTopics, so the child creates the topic. On a real cluster the
Go program creates `bench-go` itself when missing.

    bench/kafka_go.py [--build build/release] [--brokers LIST] [--quick]

runs the Go side alone. run.py's summary JSON gets go_default_1_msgs_per_s,
go_1_msgs_per_s, go_default_16_msgs_per_s, go_16_msgs_per_s (1 ms is the
tuned mode without "default") and go_1_ratio, go_16_ratio (dispatch-kafka's
B1 msgs_per_s and B3 threads16_msgs_per_s over tuned kafka-go), null when not
run.

`bench/kafka_go.py --mock-cluster TOPIC PARTITIONS` is the child that hosts
the mock cluster: it prints its bootstrap and lives until its stdin closes.
"""

import ctypes
import ctypes.util
import json
import os
import shutil
import subprocess
import sys

from bench_common import build_dir, fmt, last_json, log

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "kafka_go")
TOPIC = "bench-go"
# (result key, publishers, --batch-timeout or None for kafka-go's default).
RUNS = [
    ("go_default_1", 1, None),
    ("go_1", 1, "1ms"),
    ("go_default_16", 16, None),
    ("go_16", 16, "1ms"),
]


def build_go(build):
    """go build into <build>/bench/kafka_go; returns the binary or None."""
    go = shutil.which("go")
    if go is None:
        log("go not found on PATH: skipping the Go original (kafka-go) runs")
        return None
    out_dir = os.path.join(build, "bench")
    os.makedirs(out_dir, exist_ok=True)
    binary = os.path.join(out_dir, "kafka_go")
    cmd = [go, "build", "-p", "2", "-buildvcs=false", "-o", binary, "."]
    log("$ (cd bench/kafka_go && " + " ".join(cmd) + ")")
    proc = subprocess.run(cmd, cwd=SOURCE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=600)
    if proc.returncode != 0:
        log(proc.stdout.rstrip())
        log(f"go build failed (exit code {proc.returncode}): skipping the Go original runs")
        return None
    return binary


def serve_mock_cluster(topic, partitions):
    """The child: a one-broker librdkafka mock cluster holding `topic`."""
    path = ctypes.util.find_library("rdkafka") or "librdkafka.so.1"
    lib = ctypes.CDLL(path)
    vp, cp = ctypes.c_void_p, ctypes.c_char_p
    lib.rd_kafka_conf_new.restype = vp
    lib.rd_kafka_conf_set.argtypes = [vp, cp, cp, cp, ctypes.c_size_t]
    lib.rd_kafka_new.restype = vp
    lib.rd_kafka_new.argtypes = [ctypes.c_int, vp, cp, ctypes.c_size_t]
    lib.rd_kafka_mock_cluster_new.restype = vp
    lib.rd_kafka_mock_cluster_new.argtypes = [vp, ctypes.c_int]
    lib.rd_kafka_mock_cluster_bootstraps.restype = cp
    lib.rd_kafka_mock_cluster_bootstraps.argtypes = [vp]
    lib.rd_kafka_mock_topic_create.argtypes = [vp, cp, ctypes.c_int, ctypes.c_int]
    errstr = ctypes.create_string_buffer(512)
    conf = lib.rd_kafka_conf_new()
    lib.rd_kafka_conf_set(conf, b"log_level", b"3", errstr, len(errstr))
    rk = lib.rd_kafka_new(0, conf, errstr, len(errstr))  # RD_KAFKA_PRODUCER
    if not rk:
        sys.exit("cannot create a librdkafka handle: " + errstr.value.decode())
    mock = lib.rd_kafka_mock_cluster_new(rk, 1)
    if not mock:
        sys.exit("cannot start the mock cluster")
    if lib.rd_kafka_mock_topic_create(mock, topic.encode(), partitions, 1) != 0:
        sys.exit("cannot create the topic in the mock cluster")
    print(lib.rd_kafka_mock_cluster_bootstraps(mock).decode(), flush=True)
    sys.stdin.read()  # until the parent closes the pipe or exits
    os._exit(0)  # the handle and the mock go with the process


def start_mock_cluster():
    """Returns (process, bootstrap) or (None, None) when it does not start."""
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--mock-cluster", TOPIC, "1"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    bootstrap = proc.stdout.readline().strip()
    if not bootstrap:
        proc.stdin.close()
        proc.wait(10)
        log("the mock cluster for kafka-go did not start (librdkafka not loadable?): "
            "skipping the Go original runs")
        return None, None
    return proc, bootstrap


def run_all(build, brokers, quick):
    """Builds and runs the four configurations; returns {key: JSON or None}."""
    results = {key: None for key, _, _ in RUNS}
    binary = build_go(build)
    if binary is None:
        return results
    mock = None
    extra = []
    if not brokers:
        mock, brokers = start_mock_cluster()
        if mock is None:
            return results
        extra = ["--no-create"]
        log(f"kafka-go runs on librdkafka's mock cluster at {brokers} (child process)")
    try:
        for key, publishers, batch_timeout in RUNS:
            cmd = [binary, "--brokers", brokers, "--topic", TOPIC, "--publishers", str(publishers),
                   "--json"] + extra + (["--quick"] if quick else [])
            if batch_timeout:
                cmd += ["--batch-timeout", batch_timeout]
            log("$ " + " ".join(cmd))
            try:
                proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True, timeout=180)
            except subprocess.TimeoutExpired:
                log(f"{key} timed out after 180 s")
                continue
            log(proc.stdout.rstrip())
            data = last_json(proc.stdout)
            if proc.returncode != 0 or data is None:
                log(f"{key} failed (exit code {proc.returncode})")
                continue
            results[key] = data
    finally:
        if mock is not None:
            mock.stdin.close()
            try:
                mock.wait(10)
            except subprocess.TimeoutExpired:
                mock.kill()
                mock.wait()
    return results


def _get(results, key, field):
    return (results.get(key) or {}).get(field)


def _ratio(a, b):
    return a / b if a is not None and b else None


def summary(results):
    """Keys for run.py's summary JSON (null when not run)."""
    go = results.get("go") or {}
    out = {}
    for key, _, _ in RUNS:
        out[key + "_msgs_per_s"] = _get(go, key, "msgs_per_s")
    # dispatch-kafka over tuned kafka-go (1 ms), same shape, same broker.
    out["go_1_ratio"] = _ratio(_get(results, "B1", "msgs_per_s"), out["go_1_msgs_per_s"])
    out["go_16_ratio"] = _ratio(_get(results, "B3", "threads16_msgs_per_s"), out["go_16_msgs_per_s"])
    return out


def _rate(v, spec):
    return "n/a" if v is None else format(v, spec) + " msg/s"


def report_lines(results):
    """The "## The Go original" section of docs/benchmarks.md."""
    go = results.get("go") or {}
    b1, b3 = results.get("B1") or {}, results.get("B3") or {}
    rows = [
        (1, "go_default_1", "go_1", b1.get("baseline_msgs_per_s"), b1.get("msgs_per_s")),
        (16, "go_default_16", "go_16", b3.get("baseline_threads16_msgs_per_s"),
         b3.get("threads16_msgs_per_s")),
    ]
    lines = [
        "## The Go original (kafka-go v0.4.50)",
        "",
        "`bench/kafka_go` publishes the way the original Go package did: one shared "
        "`kafka.Writer` with `RequiredAcks: kafka.RequireAll`, `Balancer: &kafka.Hash{}` and "
        "kafka-go's defaults otherwise, so a batch timeout of 1 s; and the same writer with "
        "`BatchTimeout: time.Millisecond`, as a tuned user would run it. Each publisher "
        "goroutine writes one keyed 100-byte message at a time with a blocking `WriteMessages`. "
        "The C++ figures are B1 (1 publisher) and B3 (16 threads) of the same run, same broker. "
        "Ratio = dispatch-kafka / kafka-go.",
        "",
        "| publishers | kafka-go default (1 s) | kafka-go 1 ms | raw librdkafka | dispatch-kafka "
        "| ratio to kafka-go default | ratio to kafka-go 1 ms |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for n, default_key, tuned_key, raw, ours in rows:
        d, t = _get(go, default_key, "msgs_per_s"), _get(go, tuned_key, "msgs_per_s")
        lines.append(f"| {n} | {_rate(d, ',.1f')} | {_rate(t, ',.0f')} | {_rate(raw, ',.0f')} "
                     f"| {_rate(ours, ',.0f')} | {fmt(_ratio(ours, d), ',.0f')} "
                     f"| {fmt(_ratio(ours, t), '.2f')} |")
    lines += [
        "",
        "kafka-go per configuration (p50 and p99 of one `WriteMessages`, CPU of the Go process "
        "per message, user + system):",
        "",
        "| publishers | batch timeout | messages in | msg/s | p50 | p99 | CPU per message "
        "| failed writes |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key, n, batch_timeout in RUNS:
        r = go.get(key)
        label = "1 ms" if batch_timeout else "1 s (default)"
        if r is None:
            lines.append(f"| {n} | {label} | not run | | | | | |")
            continue
        lines.append(f"| {n} | {label} | {r.get('messages'):,} in {fmt(r.get('seconds'), '.1f')} s "
                     f"| {fmt(r.get('msgs_per_s'), ',.1f')} "
                     f"| {fmt(r.get('p50_us'), ',.0f')} us | {fmt(r.get('p99_us'), ',.0f')} us "
                     f"| {fmt(r.get('cpu_us_per_msg'), ',.0f')} us | {r.get('failures')} |")
    lines += [
        "",
        "With the default batch timeout every blocking write waits for the 1 s batch timer, so "
        "each publisher gets about one message per second whatever the broker. On the embedded "
        "cluster the mock broker runs in a child process for kafka-go (it needs a TCP port it "
        "can reach) but inside the benchmark process for B1 and B3, so there the C++ CPU "
        "figures include the broker's work and kafka-go's do not. Run it alone: "
        "`bench/kafka_go.py --build build/release [--brokers LIST] [--quick]`.",
        "",
    ]
    return lines


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--mock-cluster":
        serve_mock_cluster(sys.argv[2], int(sys.argv[3]))
        return 0
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default="build/release", help="build folder (default %(default)s)")
    parser.add_argument("--brokers", default="", help="real cluster, host:port[,...]")
    parser.add_argument("--quick", action="store_true", help="3 s per configuration instead of 10 s")
    args = parser.parse_args()
    build = build_dir(args.build)
    go = run_all(build, args.brokers, args.quick)
    log(json.dumps(summary({"go": go})))
    return 1 if any(v is None for v in go.values()) else 0


if __name__ == "__main__":
    sys.exit(main())

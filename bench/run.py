#!/usr/bin/env python3
"""Runs the benchmarks B1-B5 from a build folder and prints one JSON line.

Builds nothing: build first (cmake --build build/release). Each benchmark
measures raw librdkafka on the same broker in the same process beside our
publisher, so the figures that matter are the ratios; absolute times drift on
a shared machine.

    bench/run.py [--build build/release] [--quick] [--brokers host:port,...]
                 [--report] [--curves | --no-curves] [--demo-events N]
                 [--matrix BUILD[,BUILD...]]

--quick      the whole run in under a minute on the embedded cluster (B4
             publishes 200,000 messages instead of 1,000,000 and says so)
--brokers    run on a real cluster instead of the embedded one (the
             benchmark topics are created when missing; so are outbox_demo's)
--report     also write docs/benchmarks.md and docs/benchmarks.png; the chart
             needs matplotlib, which is installed into a venv under build/
--curves     also run the scaling curves (bench/scaling: message size,
             blocking callers, partitions, compression, messages in flight),
             and with --report write their sections and one chart per curve
             (docs/benchmarks-CURVE.png); on by default with --report, off
             otherwise. About 2 minutes on the embedded cluster and 3 on a
             one-node real cluster (under a minute with --quick);
             --no-curves skips them and keeps the curve sections already in
             docs/benchmarks.md
--matrix     also run B1, B2 and B3 from each of these build folders (full
             unless --quick) on the embedded cluster and, with --brokers, on
             that real cluster too, and show the targets per librdkafka
             version (the one each build's binaries link) and broker: a table
             on stdout, the "matrix" key of the JSON and, with --report, the
             section "Targets by librdkafka version and broker" (kept as it
             is by a later --report without --matrix). A (build, broker) pair
             that the main run already measured is not run twice; each pair
             logs how long it took (under 10 s with --quick on 2 cores).

The last line of output is one JSON object with the keys latency_p50_ratio,
latency_p99_ratio, batch_throughput_ratio, threads16_ratio, cpu_per_msg_ratio
(the worst of b1_cpu_per_msg_ratio, b2_cpu_per_msg_ratio and
b3_cpu_per_msg_ratio, which are keys too; null unless all three ran),
rss_growth_mib, demo_rows_per_s, the Go keys of bench/kafka_go.py, and with
--matrix "matrix": one object per (build, broker) with the librdkafka version,
the same ratio keys and "missed", the targets that ratio misses. A value is
null for a scenario that did not run or failed. The exit code is 1 when B1,
B2, B3 or B4 of the main run failed, whatever the targets' verdicts.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile

import kafka_go
from bench_common import last_json, log

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Targets from the issue: (key, comparison, bound). Each ratio is
# dispatch-kafka / raw librdkafka on the same broker in the same run.
TARGETS = {
    "latency_p50_ratio": ("<=", 1.03),
    "latency_p99_ratio": ("<=", 1.05),
    "batch_throughput_ratio": (">=", 0.95),
    "threads16_ratio": (">=", 1.3),  # aim 1.5
    "cpu_per_msg_ratio": ("<=", 0.8),  # the worst of B1's, B2's and B3's
    "rss_growth_mib": ("<=", 16.0),
}
# The per-scenario CPU ratios are held to the same bound as their worst.
TARGET_OF = {"b1_cpu_per_msg_ratio": "cpu_per_msg_ratio",
             "b2_cpu_per_msg_ratio": "cpu_per_msg_ratio",
             "b3_cpu_per_msg_ratio": "cpu_per_msg_ratio"}

# What each lever of the publisher's cost paid, for the report's levers
# table: lever -> (effect measured, kept?). The levers of issue 13, each measured by building the library before and
# after it with the same benchmarks (B1, B2, B3 full, embedded cluster,
# librdkafka 2.14.2, three interleaved runs of each build on an idle machine;
# ranges over the runs). Written by hand: run.py does not rebuild old code.
LEVERS = {
    "one allocation per call (the Call and its slots, reference-counted) instead of a "
    "heap `Pending` per message and a `shared_ptr` Call; one lock per delivery report; "
    "`rd_kafka_producev` instead of the C++ `produce()` (which copies the topic name); a "
    "batch counted as producing once, not per message":
        ("B1 p50 ratio 1.29-1.52 -> 1.14-1.20, B1 CPU/msg 1.23-1.59 -> 1.09-1.34; "
         "B2 0.72-0.74 -> 0.76-0.96; B3 0.96-1.12 -> 0.98-1.12", "yes"),
    "a waiting caller serves delivery reports (leader/follower, on top of the row above)":
        ("B1 p50 ratio 1.14-1.20 -> 1.02-1.03, p99 0.95-1.32 -> 0.81-1.02, CPU/msg "
         "1.09-1.34 -> 1.02-1.04; B2 0.76-0.96 -> 0.89-0.96; B3 unchanged (0.98-1.12 -> "
         "0.89-1.05; context switches per message 1.74-1.83 -> 1.87-1.93)", "yes"),
    "`rd_kafka_produceva` with one argument list":
        ("not measured apart: it and `rd_kafka_producev` share librdkafka's code after "
         "the arguments are read", "producev"),
}

# The ratios that --matrix measures per (librdkafka version, broker):
# (key, column title), in the table's order.
MATRIX_COLUMNS = [
    ("latency_p50_ratio", "B1 p50 ratio"),
    ("latency_p99_ratio", "B1 p99 ratio"),
    ("batch_throughput_ratio", "B2 ratio"),
    ("threads16_ratio", "B3 ratio"),
    ("b1_cpu_per_msg_ratio", "B1 CPU/msg ratio"),
    ("b2_cpu_per_msg_ratio", "B2 CPU/msg ratio"),
    ("b3_cpu_per_msg_ratio", "B3 CPU/msg ratio"),
]
MATRIX_HEADING = "## Targets by librdkafka version and broker"


def run(cmd, timeout):
    """Runs cmd, echoes its output, returns (exit code, output)."""
    log("$ " + " ".join(cmd))
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired as e:
        out = e.stdout if isinstance(e.stdout, str) else (e.stdout or b"").decode(errors="replace")
        log(out)
        log(f"timed out after {timeout} s")
        return 124, out
    log(proc.stdout.rstrip())
    return proc.returncode, proc.stdout


def scenario(build, name, args, timeout):
    """Runs one benchmark binary; returns its JSON or None."""
    binary = os.path.join(build, "bench", name)
    if not os.access(binary, os.X_OK):
        log(f"{binary} is missing: build the project first")
        return None
    code, out = run([binary] + args, timeout)
    data = last_json(out)
    if code != 0 or data is None:
        log(f"{name} failed (exit code {code})")
        return None
    return data


def leak_check(build, broker_args):
    """B4's 10,000-message run under valgrind: 'clean', 'leaks' or None."""
    valgrind = shutil.which("valgrind")
    binary = os.path.join(build, "bench", "publish_rss")
    if valgrind is None or not os.access(binary, os.X_OK):
        log("valgrind not found: skipping the leak check (apt-get install valgrind)")
        return None
    code, _ = run([valgrind, "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
                   "--show-leak-kinds=definite,indirect", "--error-exitcode=99",
                   "--child-silent-after-fork=yes", "--quiet", binary, "--messages", "10000"]
                  + broker_args, 300)
    return "clean" if code == 0 else "leaks" if code == 99 else None


def demo(build, events, broker_args):
    binary = os.path.join(build, "examples", "outbox_dispatcher", "outbox_demo")
    if not os.access(binary, os.X_OK):
        log(f"{binary} not built: demo_rows_per_s is null")
        return None
    code, out = run([binary, "--events", str(events), "--json"] + broker_args, 300)
    data = last_json(out)
    if code != 0 or data is None or "demo_rows_per_s" not in data:
        log(f"outbox_demo failed (exit code {code})")
        return None
    return data


def holds(key, value):
    """True or False against key's target; None when not run."""
    if value is None:
        return None
    op, bound = TARGETS[TARGET_OF.get(key, key)]
    return value <= bound if op == "<=" else value >= bound


def verdict(key, value):
    ok = holds(key, value)
    if ok is None:
        return "not run"
    op, bound = TARGETS[TARGET_OF.get(key, key)]
    return ("holds" if ok else "MISSED") + f" ({op} {bound:g})"


def ratio_keys(b1, b2, b3):
    """The target ratios of one B1, B2, B3 run (their JSON or None)."""
    def get(data, field):
        return (data or {}).get(field)
    cpu = [get(b, "cpu_per_msg_ratio") for b in (b1, b2, b3)]
    return {
        "latency_p50_ratio": get(b1, "latency_p50_ratio"),
        "latency_p99_ratio": get(b1, "latency_p99_ratio"),
        "batch_throughput_ratio": get(b2, "batch_throughput_ratio"),
        "threads16_ratio": get(b3, "threads16_ratio"),
        "cpu_per_msg_ratio": None if None in cpu else max(cpu),
        "b1_cpu_per_msg_ratio": cpu[0],
        "b2_cpu_per_msg_ratio": cpu[1],
        "b3_cpu_per_msg_ratio": cpu[2],
    }


def linked_rdkafka(build):
    """The librdkafka version that <build>/bench/publish_latency links: the
    path ldd resolves, asked for rd_kafka_version_str() in a child python
    (one librdkafka per process). None when it cannot be told."""
    binary = os.path.join(build, "bench", "publish_latency")
    try:
        out = subprocess.run(["ldd", binary], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    lib = None
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0].startswith("librdkafka.so") and "=>" in parts:
            lib = parts[parts.index("=>") + 1]
    if lib is None or not os.path.exists(lib):
        return None
    code = ("import ctypes, sys; l = ctypes.CDLL(sys.argv[1]); "
            "l.rd_kafka_version_str.restype = ctypes.c_char_p; "
            "print(l.rd_kafka_version_str().decode())")
    try:
        proc = subprocess.run([sys.executable, "-c", code, lib], capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def machine(build=None):
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "unknown"
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                    break
    except OSError:
        pass
    # The librdkafka that the build's benchmarks link, else pkg-config's.
    rdkafka = (linked_rdkafka(build) if build else None) or "unknown"
    if rdkafka == "unknown":
        try:
            rdkafka = subprocess.run(["pkg-config", "--modversion", "rdkafka"], capture_output=True,
                                     text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            pass
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=ROOT).stdout.strip() or "unknown"
    return {"nproc": os.cpu_count(), "cpu": cpu, "memory": mem, "kernel": platform.release(),
            "librdkafka": rdkafka, "commit": commit,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def fmt(v, spec):
    return "n/a" if v is None else format(v, spec)


def write_markdown(path, results, summary, info, args, curves=None, matrix=None):
    b1, b2, b3, b4 = (results.get(k) or {} for k in ("B1", "B2", "B3", "B4"))
    b5 = results.get("B5") or {}
    mode = "quick" if args.quick else "full"
    broker = f"real cluster `{args.brokers}`" if args.brokers else "embedded cluster (librdkafka mock, in process)"
    lines = [
        "# Benchmarks",
        "",
        f"Written by `bench/run.py --report` ({mode} run) on {info['date']}, commit "
        f"`{info['commit']}`, on the {broker}.",
        "",
        f"Machine: {info['nproc']} cores ({info['cpu']}), {info['memory']} memory, Linux "
        f"{info['kernel']}, librdkafka {info['librdkafka']}. The machine is shared, so absolute "
        "times drift from run to run; each benchmark runs raw librdkafka on the same broker in "
        "the same process, interleaved with ours, and the ratio is the figure to read.",
        "",
        "| | scenario | dispatch-kafka | raw librdkafka baseline | ratio | target |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| B1 | single-thread blocking `Publish`, p50 | {fmt(b1.get('latency_p50_us'), '.0f')} us "
        f"| {fmt(b1.get('baseline_p50_us'), '.0f')} us (produce, poll for the report, linger 0) "
        f"| {fmt(summary['latency_p50_ratio'], '.2f')} | "
        f"{verdict('latency_p50_ratio', summary['latency_p50_ratio'])} |",
        f"| B1 | same, p99 | {fmt(b1.get('latency_p99_us'), '.0f')} us "
        f"| {fmt(b1.get('baseline_p99_us'), '.0f')} us | "
        f"{fmt(summary['latency_p99_ratio'], '.2f')} | "
        f"{verdict('latency_p99_ratio', summary['latency_p99_ratio'])} |",
        f"| B1 | same, throughput | {fmt(b1.get('msgs_per_s'), ',.0f')} msg/s "
        f"| {fmt(b1.get('baseline_msgs_per_s'), ',.0f')} msg/s | "
        f"{fmt(b1.get('msgs_per_s') and b1['msgs_per_s'] / b1['baseline_msgs_per_s'], '.2f')} | |",
        f"| B2 | `PublishBatch` of 1,000 x 100 B, median batch | {fmt(b2.get('batch_msgs_per_s'), ',.0f')} msg/s "
        f"| {fmt(b2.get('baseline_batch_msgs_per_s'), ',.0f')} msg/s (produce all, then flush) "
        f"| {fmt(summary['batch_throughput_ratio'], '.2f')} | "
        f"{verdict('batch_throughput_ratio', summary['batch_throughput_ratio'])} |",
        f"| B3 | 16 threads of blocking `Publish` | {fmt(b3.get('threads16_msgs_per_s'), ',.0f')} msg/s "
        f"| {fmt(b3.get('baseline_threads16_msgs_per_s'), ',.0f')} msg/s (16 threads, one shared "
        f"producer, one report thread, a condition variable per message) "
        f"| {fmt(summary['threads16_ratio'], '.2f')} | "
        f"{verdict('threads16_ratio', summary['threads16_ratio'])}, aim 1.5 |",
        f"| B1-B3 | CPU per message, the worst of B1 ({fmt(b1.get('cpu_us_per_msg'), '.1f')} us "
        f"against {fmt(b1.get('baseline_cpu_us_per_msg'), '.1f')} us), B2 "
        f"({fmt(b2.get('cpu_us_per_msg'), '.2f')} against {fmt(b2.get('baseline_cpu_us_per_msg'), '.2f')} us) "
        f"and B3 ({fmt(b3.get('cpu_us_per_msg'), '.1f')} against "
        f"{fmt(b3.get('baseline_cpu_us_per_msg'), '.1f')} us) | | | "
        f"{fmt(summary['cpu_per_msg_ratio'], '.2f')} "
        f"(B1 {fmt(summary['b1_cpu_per_msg_ratio'], '.2f')}, B2 {fmt(summary['b2_cpu_per_msg_ratio'], '.2f')}, "
        f"B3 {fmt(summary['b3_cpu_per_msg_ratio'], '.2f')}) | "
        f"{verdict('cpu_per_msg_ratio', summary['cpu_per_msg_ratio'])} |",
        f"| B4 | RSS growth, {fmt(b4.get('messages'), ',')} messages against 10,000 "
        f"| {fmt(summary['rss_growth_mib'], '.1f')} MiB ({fmt(b4.get('rss_10k_mib'), '.1f')} -> "
        f"{fmt(b4.get('rss_end_mib'), '.1f')} MiB) | | | "
        f"{verdict('rss_growth_mib', summary['rss_growth_mib'])} |",
        f"| B4 | 10,000 messages under valgrind memcheck | {results.get('leak_check') or 'not run'} "
        "| | | no definite or indirect leak |",
        f"| B5 | outbox demo, rows published per second | {fmt(summary['demo_rows_per_s'], ',.0f')} "
        f"| | | |" if b5 else "| B5 | outbox demo | not built in this run | | | |",
        "",
        "![B1 latency distribution and B2/B3 throughput](benchmarks.png)",
        "",
        "How each baseline is written (the raw producer has the librdkafka properties the "
        "publisher applies, taken from `EffectiveProperties`: acks=all, idempotence, linger.ms=0, "
        "murmur2_random, message.timeout.ms, allow.auto.create.topics=false, ...):",
        "",
        "- B1 `bench/publish_latency.cpp`: produce one message, `poll()` until its delivery "
        "report; ours and the baseline alternate message by message.",
        "- B2 `bench/publish_batch.cpp`: `produce()` 1,000 messages, then `flush()`; 200 batches "
        "alternate, on a one-partition topic. msg/s is taken from the median batch: on the embedded "
        "cluster some batches of either side wait ~45 ms inside librdkafka 2.0.2 instead of taking "
        "~1 ms (the raw producer alone does it too; on 4 partitions every batch does), so a mean "
        f"compares stall counts. Mean-based in this run: {fmt(b2.get('mean_batch_msgs_per_s'), ',.0f')} "
        f"against {fmt(b2.get('baseline_mean_batch_msgs_per_s'), ',.0f')} msg/s, ratio "
        f"{fmt(b2.get('mean_batch_throughput_ratio'), '.2f')}.",
        "- B3 `bench/publish_threads.cpp`: the baseline is `bench::RawThreadedProducer` "
        "(`bench/bench_util.h`): one producer shared by the 16 threads, one thread that serves "
        "delivery reports (`poll()` in a loop), and each caller waits on a condition variable of "
        "its own until its message's report; rounds alternate.",
        f"  In this run our side used {fmt(b3.get('cpu_us_per_msg'), '.0f')} us of CPU per message "
        f"(baseline {fmt(b3.get('baseline_cpu_us_per_msg'), '.0f')} us) with "
        f"{fmt(b3.get('cores_busy'), '.2f')} of {info['nproc']} cores busy, and "
        f"{fmt(b3.get('switches_per_msg'), '.2f')} context switches per message (baseline "
        f"{fmt(b3.get('baseline_switches_per_msg'), '.2f')}). Each of the 16 "
        "threads has one message in flight, so throughput is 16 divided by the round trip, and "
        "the round trip is a chain of thread wake-ups (caller, librdkafka's broker thread, the "
        "broker, back, and the thread serving reports). Both sides make the same librdkafka "
        "calls with the same properties; ours saves one wake-up for the caller that serves the "
        "reports.",
        "- B4 `bench/publish_rss.cpp`: cycles of one `PublishBatch` of 990 and 10 `Publish`.",
        "- B6, CPU per message: user+system time of the benchmark process (`getrusage`) around "
        "each side's calls. The embedded cluster runs in a child process, so on both brokers "
        "the figure is the client's alone. It is mostly librdkafka's and the kernel's: "
        "`perf record` of B1 on the embedded cluster puts about 70% of the client's samples in "
        "librdkafka's broker thread and 29% in the calling thread, most of both in the kernel "
        "(`poll`, futex wake-ups, TCP). A wrapper that makes the same librdkafka calls with "
        "the same properties pays that same work per message, so its CPU per message comes "
        "near the baseline's but cannot go to 0.8 of it by its own code; where it saves is "
        "wake-ups (B3).",
        "",
        "What paid and what did not: see the levers table below.",
        "",
        "| lever | effect measured | kept? |",
        "| --- | --- | --- |",
    ] + [f"| {lever} | {effect} | {kept} |" for lever, (effect, kept) in LEVERS.items()] + [
        "",
        "Run it again: `bench/run.py --build build/release --report` (full) or "
        "`bench/run.py --quick` (under a minute).",
        "",
    ]
    old = ""
    if os.path.exists(path):
        with open(path) as f:
            old = f.read()
    lines += matrix_section(matrix, old, info, args)
    lines += kafka_go.report_lines(results)
    # B8 (bench/dispatcher_scaling.cpp) runs on a PostgreSQL server and a
    # three-node cluster that this runner does not start; its section is
    # written from that benchmark's output and kept as it is.
    at = old.find("\n## B8")
    kept = old[at:] if at >= 0 else ""
    with open(path, "w") as f:
        f.write("\n".join(lines) + scaling_sections(curves, old, info, args) + kept)


def matrix_cell(key, value):
    ok = holds(key, value)
    return "not run" if ok is None else f"{value:.2f} {'holds' if ok else 'MISSED'}"


def matrix_section(matrix, old_text, info, args):
    """The "Targets by librdkafka version and broker" section (a list of
    lines). Without a matrix in this run, the section already in old_text is
    kept as it is."""
    if matrix is None:
        at = old_text.find("\n" + MATRIX_HEADING)
        if at < 0:
            return []
        end = old_text.find("\n## ", at + 1)
        kept = old_text[at + 1:end] if end >= 0 else old_text[at + 1:]
        return kept.rstrip("\n").split("\n") + [""]
    mode = "quick" if args.quick else "full"
    def target(key):
        op, bound = TARGETS[TARGET_OF.get(key, key)]
        return f"{op} {bound:g}"
    lines = [
        MATRIX_HEADING,
        "",
        f"Written by `bench/run.py --report --matrix` ({mode} run) on {info['date']}, commit "
        f"`{info['commit']}`, on {info['nproc']} cores ({info['cpu']}), {info['memory']} memory, "
        f"Linux {info['kernel']}. B1, B2 and B3 of each build folder, on the embedded cluster and "
        "on the real cluster when one was given; the librdkafka version is the one the build's "
        "benchmarks link. Each ratio is dispatch-kafka / raw librdkafka of the same run; the "
        "CPU/msg ratios are held to the CPU per message target each.",
        "",
        "| librdkafka | broker | " + " | ".join(f"{title} ({target(key)})"
                                              for key, title in MATRIX_COLUMNS) + " |",
        "| --- | --- | " + " | ".join("---" for _ in MATRIX_COLUMNS) + " |",
    ]
    for row in matrix:
        lines.append(f"| {row['librdkafka'] or 'unknown'} (`{row['build']}`) | {row['broker']} | "
                     + " | ".join(matrix_cell(key, row[key]) for key, _ in MATRIX_COLUMNS) + " |")
    lines.append("")
    return lines


def run_matrix(builds, quick, brokers, measured):
    """B1, B2, B3 of each build on the embedded cluster and, when brokers
    is set, on that real cluster; one row per (build, broker). `measured`
    maps (real path of a build, brokers) to the (B1, B2, B3) results that
    the main run already has."""
    rows = []
    for build_arg in builds:
        build = os.path.join(ROOT, build_arg) if not os.path.isabs(build_arg) else build_arg
        version = linked_rdkafka(build)
        for broker in [""] + ([brokers] if brokers else []):
            key = (os.path.realpath(build), broker)
            started = datetime.datetime.now()
            if key in measured:
                b1, b2, b3 = measured[key]
                log(f"matrix: {build_arg} on {broker or 'embedded'}: B1-B3 of the main run")
            else:
                broker_args = ["--brokers", broker] if broker else []
                b1 = scenario(build, "publish_latency", quick + broker_args, 600)
                b2 = scenario(build, "publish_batch", quick + broker_args, 600)
                b3 = scenario(build, "publish_threads", quick + broker_args, 600)
                seconds = (datetime.datetime.now() - started).total_seconds()
                log(f"matrix: {build_arg} on {broker or 'embedded'}: B1-B3 took {seconds:.0f} s")
            row = {"build": build_arg, "librdkafka": version,
                   "broker": broker or "embedded", **ratio_keys(b1, b2, b3)}
            row["missed"] = [k for k, _ in MATRIX_COLUMNS if holds(k, row[k]) is False]
            rows.append(row)
    return rows


def log_matrix(rows):
    log("targets by librdkafka version and broker (ratio = ours / raw librdkafka, same run):")
    widths = [10, max([8] + [len(r["broker"]) for r in rows])] + \
        [max(12, len(t)) for _, t in MATRIX_COLUMNS]
    head = ["librdkafka", "broker"] + [t for _, t in MATRIX_COLUMNS]
    log("  " + "  ".join(h.ljust(w) for h, w in zip(head, widths)))
    for row in rows:
        cells = [row["librdkafka"] or "unknown", row["broker"]] + \
            [matrix_cell(k, row[k]) for k, _ in MATRIX_COLUMNS]
        log(("  " + "  ".join(c.ljust(w) for c, w in zip(cells, widths))).rstrip())
    log("  targets: " + ", ".join(f"{t} {TARGETS[TARGET_OF.get(k, k)][0]} "
                                  f"{TARGETS[TARGET_OF.get(k, k)][1]:g}" for k, t in MATRIX_COLUMNS))


def ensure_matplotlib():
    """Returns a python that has matplotlib, installing it into build/bench-venv."""
    try:
        import matplotlib  # noqa: F401
        return sys.executable
    except ImportError:
        pass
    venv = os.path.join(ROOT, "build", "bench-venv")
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    if subprocess.run([python, "-c", "import matplotlib"], capture_output=True).returncode != 0:
        log("installing matplotlib into build/bench-venv")
        subprocess.run([python, "-m", "pip", "install", "--quiet", "matplotlib"], check=True)
    return python


def plot(data_path, png_path):
    """Draws the chart from the JSON that write_chart saved (run in the venv)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(data_path) as f:
        data = json.load(f)
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(14, 4.5),
                                        gridspec_kw={"width_ratios": [3, 1.2, 1.2]})
    raw, ours = data.get("raw_us") or [], data.get("ours_us") or []
    if raw and ours:
        # Latency by percentile, log scale: the body and the tail in one view.
        for values, label in ((raw, "raw librdkafka"), (ours, "dispatch-kafka")):
            v = sorted(values)
            n = len(v)
            ax1.plot(v, [100.0 * (i + 1) / n for i in range(n)],
                     label=f"{label}: p50 {v[n // 2]:.0f} us, p99 {v[min(n - 1, n * 99 // 100)]:.0f} us")
        ax1.set_xscale("log")
        ax1.set_xlabel("latency of one blocking publish, us (log scale)")
        ax1.set_ylabel("percent of messages at or below")
        ax1.grid(True, which="both", alpha=0.3)
        ax1.legend(loc="lower right")
    ax1.set_title("B1 single-thread blocking publish")
    # One panel per scenario: their rates differ by two orders of magnitude.
    for ax, (label, b, o) in zip((ax2, ax3), data.get("bars", [])):
        if b is None or o is None:
            ax.set_title(label + "\n(not run)")
            continue
        ax.bar([0, 1], [b, o], color=["tab:blue", "tab:orange"])
        ax.set_xticks([0, 1])
        ax.set_xticklabels(["raw\nlibrdkafka", "dispatch-\nkafka"])
        ax.text(1, o, f"x{o / b:.2f}", ha="center", va="bottom")
        ax.set_ylabel("messages per second")
        ax.set_title(label)
    fig.suptitle(data.get("title", ""))
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)


def write_chart(png_path, samples_csv, results, info):
    raw, ours = [], []
    if samples_csv and os.path.exists(samples_csv):
        with open(samples_csv) as f:
            next(f, None)
            for line in f:
                r, o = line.strip().split(",")
                raw.append(float(r))
                ours.append(float(o))
    b2, b3 = results.get("B2") or {}, results.get("B3") or {}
    data = {
        "raw_us": raw, "ours_us": ours,
        "bars": [["B2 PublishBatch\n1,000 x 100 B (median batch)", b2.get("baseline_batch_msgs_per_s"),
                  b2.get("batch_msgs_per_s")],
                 ["B3 16 threads\nblocking Publish", b3.get("baseline_threads16_msgs_per_s"),
                  b3.get("threads16_msgs_per_s")]],
        "title": f"dispatch-kafka against raw librdkafka, same broker, same run "
                 f"({info['nproc']} cores, {info['date']})",
    }
    python = ensure_matplotlib()
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(data, f)
        path = f.name
    try:
        subprocess.run([python, os.path.abspath(__file__), "--plot", path, png_path], check=True)
    finally:
        os.unlink(path)


# ---------------------------------------------------------------------------
# Scaling curves (bench/scaling, issue 13): how cost grows with the work.
# Kept apart from the B1-B5 code above: run_curves runs them, log_curves
# prints them, scaling_sections writes their part of docs/benchmarks.md,
# write_curve_charts draws docs/benchmarks-CURVE.png.

def _size_label(x):
    x = int(x)
    for unit, n in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if x >= n and x % n == 0:
            return f"{x // n} {unit}"
    return f"{x} B"


# Per curve: its title, what its x is, how x is printed, the metrics drawn
# (key without the ours_/raw_ prefix, label), and the table's columns
# (header, key, format; "x" is the point, "ratio:M" is ours_M / raw_M).
CURVES = {
    "size": {
        "title": "message size",
        "x_label": "value size",
        "x_fmt": _size_label,
        "log_x": True,
        "metrics": [("mb_per_s", "MB/s (value bytes, median batch)")],
        "columns": [("value size", "x", None), ("messages per batch", "batch_msgs", ",.0f"),
                    ("ours MB/s", "ours_mb_per_s", ",.1f"), ("raw MB/s", "raw_mb_per_s", ",.1f"),
                    ("ratio", "ratio:mb_per_s", ".2f"), ("ours msg/s", "ours_msgs_per_s", ",.0f"),
                    ("raw msg/s", "raw_msgs_per_s", ",.0f"), ("failed messages", "failures", ",.0f")],
        "setup": "`PublishBatch` of about 8 MiB (at least 10 messages) to a one-partition topic "
                 "against raw librdkafka producing all, then `flush()`; MB/s is 10^6 value bytes "
                 "per second from the median batch. Both sides set `message.max.bytes` to 2 MiB "
                 "(2097152): librdkafka's default, 1,000,000, refuses a 1 MiB value. On a real "
                 "cluster the topic is created with `max.message.bytes` 2 MiB, since Kafka's "
                 "default (1 MiB + 12 bytes) refuses a record batch that holds a 1 MiB value; a "
                 "topic left from an older run keeps its own setting, and a point that fails "
                 "its warm-up is listed as not run with librdkafka's reason.",
    },
    "callers": {
        "title": "concurrent blocking callers",
        "x_label": "threads calling blocking Publish",
        "x_fmt": lambda x: f"{int(x)}",
        "log_x": True,
        "metrics": [("msgs_per_s", "msg/s"), ("cpu_us_per_msg", "CPU us per message")],
        "columns": [("threads", "x", None), ("ours msg/s", "ours_msgs_per_s", ",.0f"),
                    ("raw msg/s", "raw_msgs_per_s", ",.0f"), ("ratio", "ratio:msgs_per_s", ".2f"),
                    ("ours CPU us/msg", "ours_cpu_us_per_msg", ".1f"),
                    ("raw CPU us/msg", "raw_cpu_us_per_msg", ".1f"),
                    ("CPU ratio", "ratio:cpu_us_per_msg", ".2f"),
                    ("ours cores busy", "ours_cores_busy", ".2f"),
                    ("raw cores busy", "raw_cores_busy", ".2f")],
        "setup": "N threads each calling blocking `Publish` (100 B, 4 partitions) against "
                 "`bench::RawThreadedProducer` from N threads: one shared producer, one thread "
                 "serving delivery reports, a condition variable per message. CPU is user + "
                 "system time of the whole client process over each side's rounds (the embedded "
                 "cluster runs in a child process). Each round lasts about 0.8 s (0.2 s quick): "
                 "the warm-up's rate sets the messages per thread.",
    },
    "partitions": {
        "title": "partitions of the topic",
        "x_label": "partitions",
        "x_fmt": lambda x: f"{int(x):,}",
        "log_x": True,
        "metrics": [("msgs_per_s", "msg/s (median batch)")],
        "columns": [("partitions", "x", None), ("ours msg/s", "ours_msgs_per_s", ",.0f"),
                    ("raw msg/s", "raw_msgs_per_s", ",.0f"), ("ratio", "ratio:msgs_per_s", ".2f"),
                    ("ours mean msg/s", "ours_mean_msgs_per_s", ",.0f"),
                    ("raw mean msg/s", "raw_mean_msgs_per_s", ",.0f"),
                    ("failed messages", "failures", ",.0f")],
        "setup": "`PublishBatch` of 1,000 messages of 100 B with 1,000 distinct keys (murmur2 "
                 "spreads them over the partitions) against raw produce-all-then-flush; msg/s "
                 "from the median batch, the mean beside it.",
    },
    "compression": {
        "title": "compression",
        "x_label": "compression.type",
        "x_fmt": None,  # the point's codec
        "log_x": False,
        "metrics": [("cpu_us_per_msg", "CPU us per message"),
                    ("wire_bytes_per_msg", "bytes on the wire per message")],
        "columns": [("codec", "x", None), ("ours CPU us/msg", "ours_cpu_us_per_msg", ".2f"),
                    ("raw CPU us/msg", "raw_cpu_us_per_msg", ".2f"),
                    ("CPU ratio", "ratio:cpu_us_per_msg", ".2f"),
                    ("ours bytes/msg on the wire", "ours_wire_bytes_per_msg", ",.1f"),
                    ("raw bytes/msg on the wire", "raw_wire_bytes_per_msg", ",.1f"),
                    ("ours msg/s", "ours_msgs_per_s", ",.0f"), ("raw msg/s", "raw_msgs_per_s", ",.0f")],
        "setup": "`PublishBatch` of 1,000 JSON order rows (an outbox event: fixed field names, "
                 "varying ids, amounts and timestamps; key + value about 336 bytes) to one "
                 "partition against raw produce-all-then-flush, with `compression.type` set "
                 "alike on both sides. Bytes on the wire are librdkafka's statistics "
                 "(`statistics.interval.ms` 1000 on both sides): the top-level `tx_bytes`, every "
                 "byte sent to the brokers, taken after the warm-up and after the last round, "
                 "over the messages in between. CPU as in the callers curve, each reading "
                 "spanning 10 consecutive batches of one side.",
    },
    "memory": {
        "title": "messages in flight",
        "x_label": "messages in flight",
        "x_fmt": lambda x: f"{int(x):,}",
        "log_x": True,
        "metrics": [("rss_mib", "RSS with N in flight, MiB"),
                    ("growth_mib", "RSS growth over the warm producer, MiB")],
        "columns": [("in flight", "x", None), ("ours RSS MiB", "ours_rss_mib", ".1f"),
                    ("ours growth MiB", "ours_growth_mib", ".2f"),
                    ("ours bytes/msg", "ours_bytes_per_msg", ",.0f"),
                    ("raw RSS MiB", "raw_rss_mib", ".1f"),
                    ("raw growth MiB", "raw_growth_mib", ".2f"),
                    ("raw bytes/msg", "raw_bytes_per_msg", ",.0f"),
                    ("growth ratio", "ratio", ".2f")],
        "setup": "Resident memory of the client process with N messages of 100 B handed over "
                 "and unanswered, against the same process before (warm, the N messages already "
                 "built). Each side of each point runs in a process of its own with an embedded "
                 "cluster of its own, which holds every response back (RTT 30 s) once the "
                 "producer is warm; ours is one `PublishBatch` of N, raw is N `produce()` calls. "
                 "The growth ratio is left out below 1 MiB of raw growth (page-level noise). Runs "
                 "on the embedded cluster only: a real broker cannot be told to hold responses.",
    },
}

# Why each curve bends, from what the curves measure and how librdkafka works.
CURVE_WHY = {
    "size": "While values are small the cost is per message (a `produce()` call, a delivery "
            "report, and on our side a waiter and a result per message), so MB/s grows almost "
            "in step with the size; once values are large, copying them (librdkafka copies "
            "every message on `produce()`, then they go through the socket) dominates, and "
            "MB/s flattens towards what memory and loopback can move.",
    "callers": "Each blocking caller has one message in flight, so more callers mean more "
               "messages per produce request and one round trip shared by more messages: "
               "msg/s grows while the 2 cores have idle time. Once they are busy, further "
               "callers add thread hand-offs and context switches (callers, librdkafka's "
               "broker thread, the thread serving reports) rather than throughput, and CPU per "
               "message stops falling.",
    "partitions": "librdkafka keeps a queue, a message set and (idempotence) a sequence per "
                  "partition, and writes one message set per partition into each produce "
                  "request: 1,000 keyed messages over 1,000 partitions are about 630 sets of "
                  "one or two messages, so the per-set costs (framing, per-partition work in "
                  "the broker thread and in the broker) replace per-message ones. Both sides "
                  "pay those inside librdkafka; what differs between them is per message.",
    "compression": "librdkafka compresses each partition's message set in its broker thread, "
                   "so the codec costs both sides the same CPU and shrinks both sides' bytes "
                   "alike; JSON rows with repeated field names compress well, zstd more "
                   "tightly and at a higher CPU cost than lz4.",
    "memory": "librdkafka holds a copy of every message (its header, key and value) until the "
              "delivery report, and our side adds a waiter and a result per message of the "
              "batch, so memory grows linearly with the messages in flight; at 10 messages the "
              "growth is below what RSS resolves.",
}


def curves_wanted(args):
    return args.report if args.curves is None else args.curves


def run_curves(build, quick, broker_args):
    """Runs bench/scaling once per curve; {curve: its final JSON, or None}."""
    binary = os.path.join(build, "bench", "scaling")
    curves = {}
    for name in CURVES:
        if not os.access(binary, os.X_OK):
            log(f"{binary} is missing: build the scaling target first")
            curves[name] = None
            continue
        code, out = run([binary, "--curve", name] + quick + broker_args, 900)
        data = last_json(out)
        # A curve whose points had failed messages still reports its points.
        if data is None or data.get("curve") != name:
            log(f"scaling --curve {name} failed (exit code {code})")
            data = None
        curves[name] = data
    return curves


def _curve_value(point, key):
    if key.startswith("ratio:"):
        m = key.split(":", 1)[1]
        o, r = point.get("ours_" + m), point.get("raw_" + m)
        return o / r if o is not None and r else None
    return point.get(key)


def _x_text(name, point):
    spec = CURVES[name]
    if name == "compression":
        return point.get("codec") or str(point.get("x"))
    return spec["x_fmt"](point["x"])


def log_curves(curves):
    log("scaling curves (ours / raw librdkafka, same broker, same run):")
    for name, data in curves.items():
        if data is None:
            log(f"  {name:12} not run")
            continue
        m = CURVES[name]["metrics"][0][0]
        parts = []
        for p in data.get("points", []):
            # Memory: the point's own ratio, left out where the growth is noise.
            v = (p.get("ratio") if name == "memory" else _curve_value(p, "ratio:" + m)) \
                if p.get("run") else None
            parts.append(f"{_x_text(name, p)}: {fmt(v, '.2f') if p.get('run') else 'not run'}")
        failed = f", {data['failures']} failed messages" if data.get("failures") else ""
        what = "RSS growth" if name == "memory" else m
        log(f"  {name:12} {what} ratio  " + ", ".join(parts) + f"  ({data.get('seconds')} s{failed})")


def _bend(name, points):
    """Where the curve bends, from the measured points (one sentence)."""
    ran = [p for p in points if p.get("run")]
    if len(ran) < 2:
        return "Too few points ran to say where the curve bends."
    def ratio_span(m):
        rs = [_curve_value(p, "ratio:" + m) for p in ran]
        rs = [r for r in rs if r is not None]
        return f"{min(rs):.2f}-{max(rs):.2f}" if rs else "n/a"
    if name == "size":
        bend = None
        for a, b in zip(ran, ran[1:]):
            if b["ours_mb_per_s"] < 3 * a["ours_mb_per_s"]:
                bend = b
                break
        first, last = ran[0], ran[-1]
        where = (f"MB/s stops growing with the size (less than 3x for a 10x larger value) from "
                 f"{_x_text(name, bend)} on" if bend else "MB/s keeps growing with the size")
        return (f"{where}: ours {first['ours_mb_per_s']:,.0f} -> {last['ours_mb_per_s']:,.0f} MB/s "
                f"and raw {first['raw_mb_per_s']:,.0f} -> {last['raw_mb_per_s']:,.0f} MB/s from "
                f"{_x_text(name, first)} to {_x_text(name, last)}; ratio {ratio_span('mb_per_s')}.")
    if name == "callers":
        peak_o = max(ran, key=lambda p: p["ours_msgs_per_s"])
        peak_r = max(ran, key=lambda p: p["raw_msgs_per_s"])
        return (f"msg/s peaks at {_x_text(name, peak_o)} threads on our side "
                f"({peak_o['ours_msgs_per_s']:,.0f}) and at {_x_text(name, peak_r)} on the raw "
                f"side ({peak_r['raw_msgs_per_s']:,.0f}); CPU per message goes from "
                f"{ran[0]['ours_cpu_us_per_msg']:.0f} us (1 thread) to "
                f"{ran[-1]['ours_cpu_us_per_msg']:.0f} us ({_x_text(name, ran[-1])}) on ours and "
                f"{ran[0]['raw_cpu_us_per_msg']:.0f} -> {ran[-1]['raw_cpu_us_per_msg']:.0f} us raw; "
                f"msg/s ratio {ratio_span('msgs_per_s')}.")
    if name == "partitions":
        steps = [(a["ours_msgs_per_s"] / b["ours_msgs_per_s"], a, b) for a, b in zip(ran, ran[1:])]
        drop, a, b = max(steps, key=lambda t: t[0])
        return (f"The steepest fall is from {_x_text(name, a)} to {_x_text(name, b)} partitions "
                f"({drop:.1f}x fewer msg/s on our side); from {_x_text(name, ran[0])} to "
                f"{_x_text(name, ran[-1])} ours falls {ran[0]['ours_msgs_per_s'] / ran[-1]['ours_msgs_per_s']:.0f}x "
                f"and raw {ran[0]['raw_msgs_per_s'] / ran[-1]['raw_msgs_per_s']:.0f}x; ratio "
                f"{ratio_span('msgs_per_s')}.")
    if name == "compression":
        base = ran[0]
        parts = []
        for p in ran[1:]:
            w = p.get("ours_wire_bytes_per_msg")
            bw = base.get("ours_wire_bytes_per_msg")
            parts.append(f"{_x_text(name, p)} sends {fmt(w and bw and bw / w, '.1f')}x fewer bytes "
                         f"than {_x_text(name, base)} for {fmt(p['ours_cpu_us_per_msg'] - base['ours_cpu_us_per_msg'], '+.2f')} us "
                         f"of CPU per message on our side "
                         f"({fmt(p['raw_cpu_us_per_msg'] - base['raw_cpu_us_per_msg'], '+.2f')} us raw)")
        return "; ".join(parts) + f"; CPU ratio {ratio_span('cpu_us_per_msg')}."
    if name == "memory":
        last = ran[-1]
        return (f"With {_x_text(name, last)} messages in flight ours grows by "
                f"{last['ours_growth_mib']:.1f} MiB ({last['ours_bytes_per_msg']:,.0f} bytes per "
                f"message) and raw by {last['raw_growth_mib']:.1f} MiB "
                f"({last['raw_bytes_per_msg']:,.0f} bytes per message).")
    return ""


def scaling_sections(curves, old_text, info, args):
    """The scaling curves' part of docs/benchmarks.md. Without curves (a
    --no-curves run), the part already in old_text is kept as it is."""
    if curves is None:
        at = old_text.find("\n## Scaling")
        if at < 0:
            return ""
        end = old_text.find("\n## B8", at)
        return old_text[at:end] if end >= 0 else old_text[at:]
    mode = "quick" if args.quick else "full"
    broker = f"real cluster `{args.brokers}`" if args.brokers else "embedded cluster"
    lines = [
        "",
        "## Scaling: how cost grows with the work",
        "",
        f"Written by `bench/run.py --report` ({mode} run, curves on) on {info['date']}, commit "
        f"`{info['commit']}`, on the {broker}, with `bench/scaling` (one curve per run: "
        "`bench/scaling --curve size|callers|partitions|compression|memory [--quick] "
        "[--brokers LIST]`). Every point measures dispatch-kafka and raw librdkafka with the "
        "publisher's librdkafka properties on the same broker in the same run, rounds "
        "alternating between the two; the ratio is ours / raw. Absolute figures drift on a "
        "shared machine; the shape of each curve and the ratio are the figures to read.",
        "",
    ]
    for name, spec in CURVES.items():
        data = curves.get(name)
        lines += [f"### Scaling: {spec['title']}", "", spec["setup"], ""]
        if data is None:
            lines += ["Not run: `bench/scaling` did not report this curve in this run.", ""]
            continue
        cols = spec["columns"]
        lines.append("| " + " | ".join(h for h, _, _ in cols) + " |")
        lines.append("| " + " | ".join("---" for _ in cols) + " |")
        points = data.get("points", [])
        for p in points:
            if not p.get("run"):
                reason = str(p.get("reason", "")).replace("|", "/")
                lines.append(f"| {_x_text(name, p)} | not run: {reason} |" + " |" * (len(cols) - 2))
                continue
            cells = [_x_text(name, p) if k == "x" else fmt(_curve_value(p, k), f) for _, k, f in cols]
            lines.append("| " + " | ".join(cells) + " |")
        if data.get("failures"):
            lines += ["", f"{data['failures']:,} messages failed in the measured rounds "
                          f"(the first: {data.get('first_failure') or 'no text'}); their "
                          "batches count in the figures."]
        if not any(p.get("run") for p in points):
            lines.append("")
            continue
        lines += ["", f"![{spec['title']}: ours against raw librdkafka](benchmarks-{name}.png)", "",
                  f"Where it bends: {_bend(name, points)} Why: {CURVE_WHY[name]}", ""]
    return "\n".join(lines)


def plot_curve(data_path, png_path):
    """Draws one curve (run in the venv): per metric ours and raw, then the ratios."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(data_path) as f:
        data = json.load(f)
    metrics = data["metrics"]
    points = [p for p in data["points"] if p.get("run")]
    fig, axes = plt.subplots(1, len(metrics) + 1, figsize=(5.4 * (len(metrics) + 1), 4.6))
    labels = [p["label"] for p in points]
    xs = [p["x"] for p in points] if data["log_x"] else list(range(len(points)))
    for ax, (m, label) in zip(axes, metrics):
        for side, name, marker in (("raw", "raw librdkafka", "o"), ("ours", "dispatch-kafka", "s")):
            ax.plot(xs, [p.get(f"{side}_{m}") for p in points], marker=marker, label=name)
        ax.set_ylabel(label)
        ax.set_title(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    ax = axes[-1]
    for m, label in metrics:
        ratios = []
        for p in points:
            o, r = p.get(f"ours_{m}"), p.get(f"raw_{m}")
            # A growth under 1 MiB is page-level noise: no ratio.
            ratios.append(o / r if o is not None and r and not (m == "growth_mib" and r < 1)
                          else None)
        ax.plot(xs, [r if r is not None else float("nan") for r in ratios], marker="^", label=label)
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_title("ratio ours / raw")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    for ax in axes:
        if data["log_x"]:
            ax.set_xscale("log")
        ax.set_xticks(xs)
        ax.set_xticklabels(labels)
        ax.minorticks_off() if not data["log_x"] else None
        ax.set_xlabel(data["x_label"])
    fig.suptitle(data["title"])
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)


def write_curve_charts(curves, info):
    """One PNG per curve that ran: docs/benchmarks-CURVE.png."""
    python = ensure_matplotlib()
    for name, data in curves.items():
        if data is None or not any(p.get("run") for p in data.get("points", [])):
            continue
        spec = CURVES[name]
        points = []
        for p in data["points"]:
            q = dict(p)
            q["label"] = _x_text(name, p)
            points.append(q)
        chart = {"metrics": spec["metrics"], "points": points, "log_x": spec["log_x"],
                 "x_label": spec["x_label"],
                 "title": f"Scaling: {spec['title']}\ndispatch-kafka against raw librdkafka, same "
                          f"broker ({data.get('broker')}), same run ({info['nproc']} cores, {info['date']})"}
        png = os.path.join(ROOT, "docs", f"benchmarks-{name}.png")
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(chart, f)
            path = f.name
        try:
            subprocess.run([python, os.path.abspath(__file__), "--plot-curve", path, png], check=True)
        finally:
            os.unlink(path)
        log(f"wrote docs/benchmarks-{name}.png")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--plot":
        plot(sys.argv[2], sys.argv[3])
        return 0
    if len(sys.argv) == 4 and sys.argv[1] == "--plot-curve":
        plot_curve(sys.argv[2], sys.argv[3])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default="build/release", help="build folder (default %(default)s)")
    parser.add_argument("--quick", action="store_true", help="the whole run in under a minute")
    parser.add_argument("--brokers", default="", help="real cluster, host:port[,...]")
    parser.add_argument("--report", action="store_true",
                        help="write docs/benchmarks.md and docs/benchmarks.png")
    parser.add_argument("--curves", action=argparse.BooleanOptionalAction, default=None,
                        help="run the scaling curves (default: on with --report, else off)")
    parser.add_argument("--demo-events", type=int, default=None,
                        help="rows for outbox_demo (default 10000 quick, 100000 full)")
    parser.add_argument("--matrix", default=None, metavar="BUILD[,BUILD...]",
                        help="also run B1-B3 from each build folder on the embedded cluster (and "
                             "--brokers) and show the targets per librdkafka version and broker")
    args = parser.parse_args()
    build = os.path.join(ROOT, args.build) if not os.path.isabs(args.build) else args.build
    quick = ["--quick"] if args.quick else []
    brokers = ["--brokers", args.brokers] if args.brokers else []

    results = {}
    samples = os.path.join(tempfile.gettempdir(), f"dispatch-bench-b1-{os.getpid()}.csv")
    results["B1"] = scenario(build, "publish_latency", quick + brokers + ["--samples", samples], 300)
    results["B2"] = scenario(build, "publish_batch", quick + brokers, 300)
    results["B3"] = scenario(build, "publish_threads", quick + brokers, 300)
    results["B4"] = scenario(build, "publish_rss", quick + brokers, 600)
    results["leak_check"] = leak_check(build, brokers)
    events = args.demo_events or (10000 if args.quick else 100000)
    results["B5"] = demo(build, events, brokers)
    results["go"] = kafka_go.run_all(build, args.brokers, args.quick)
    curves = run_curves(build, quick, brokers) if curves_wanted(args) else None
    matrix = None
    if args.matrix is not None:
        measured = {(os.path.realpath(build), args.brokers):
                    (results["B1"], results["B2"], results["B3"])}
        matrix = run_matrix([b for b in args.matrix.split(",") if b], quick, args.brokers,
                            measured)

    def get(key, field):
        return (results.get(key) or {}).get(field)

    ratios = ratio_keys(results["B1"], results["B2"], results["B3"])
    summary = {
        "latency_p50_ratio": ratios["latency_p50_ratio"],
        "latency_p99_ratio": ratios["latency_p99_ratio"],
        "batch_throughput_ratio": ratios["batch_throughput_ratio"],
        "threads16_ratio": ratios["threads16_ratio"],
        "cpu_per_msg_ratio": ratios["cpu_per_msg_ratio"],
        "b1_cpu_per_msg_ratio": ratios["b1_cpu_per_msg_ratio"],
        "b2_cpu_per_msg_ratio": ratios["b2_cpu_per_msg_ratio"],
        "b3_cpu_per_msg_ratio": ratios["b3_cpu_per_msg_ratio"],
        "rss_growth_mib": get("B4", "rss_growth_mib"),
        "demo_rows_per_s": get("B5", "demo_rows_per_s"),
        **kafka_go.summary(results),
    }
    if matrix is not None:
        summary["matrix"] = matrix
    log()
    log("summary (ratio = dispatch-kafka / raw librdkafka on the same broker, same run):")
    for key in TARGETS:
        log(f"  {key:24} {fmt(summary[key], '.3f'):>8}  {verdict(key, summary[key])}")
        if key == "cpu_per_msg_ratio":
            for sub in ("b1_cpu_per_msg_ratio", "b2_cpu_per_msg_ratio", "b3_cpu_per_msg_ratio"):
                log(f"    {sub:22} {fmt(summary[sub], '.3f'):>8}  {verdict(sub, summary[sub])}")
    log(f"  {'leak check (valgrind)':24} {results['leak_check'] or 'not run':>8}")
    log(f"  {'demo_rows_per_s':24} {fmt(summary['demo_rows_per_s'], '.0f'):>8}")
    if curves is not None:
        log_curves(curves)
    if matrix is not None:
        log_matrix(matrix)

    if args.report:
        info = machine(build)
        os.makedirs(os.path.join(ROOT, "docs"), exist_ok=True)
        write_markdown(os.path.join(ROOT, "docs", "benchmarks.md"), results, summary, info, args,
                       curves, matrix)
        write_chart(os.path.join(ROOT, "docs", "benchmarks.png"), samples, results, info)
        log("wrote docs/benchmarks.md and docs/benchmarks.png")
        if curves is not None:
            write_curve_charts(curves, info)
    if os.path.exists(samples):
        os.unlink(samples)

    failed = any(results[k] is None for k in ("B1", "B2", "B3", "B4"))
    log(json.dumps(summary))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

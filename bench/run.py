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

The runner's parts, each in a file of its own beside this one:
bench_common.py (running a benchmark binary and reading its JSON line),
targets.py, report.py (docs/benchmarks.md), charts.py (the PNGs),
matrix.py (--matrix), curves.py (--curves) and kafka_go.py (the Go original).
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

import kafka_go
from bench_common import ROOT, build_dir, fmt, last_json, log, run, scenario
from charts import write_chart, write_curve_charts
from curves import curves_wanted, log_curves, run_curves
from machine import machine
from matrix import log_matrix, run_matrix
from report import write_markdown
from targets import TARGETS, ratio_keys, verdict


def leak_check(build, broker_args):
    """B4's 10,000-message run under valgrind: 'clean', 'leaks' or None."""
    valgrind = shutil.which("valgrind")
    binary = os.path.join(build, "bench", "publish_rss")
    if valgrind is None:
        log("valgrind not found: skipping the leak check (apt-get install valgrind)")
        return None
    if not os.access(binary, os.X_OK):
        log(f"{binary} is missing: skipping the leak check (build the publish_rss target)")
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


def main():
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
    build = build_dir(args.build)
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

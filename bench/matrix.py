"""--matrix: B1, B2 and B3 of several build folders (one librdkafka each) on
the embedded cluster and a real one, their ratios against the targets, and
the report's section "Targets by librdkafka version and broker"."""

import datetime
import os

from bench_common import build_dir, log, scenario
from machine import linked_rdkafka
from targets import holds, ratio_keys, target_text

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
        "| librdkafka | broker | " + " | ".join(f"{title} ({target_text(key)})"
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
        build = build_dir(build_arg)
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
    log("  targets: " + ", ".join(f"{t} {target_text(k)}" for k, t in MATRIX_COLUMNS))

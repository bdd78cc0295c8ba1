#!/usr/bin/env python3
"""CTest's smoke test of the benchmark runner (Bench.QuickRunEndsInItsJsonLine).

    bench/check_quick.py --build BUILD

Runs `bench/run.py --quick --build BUILD` and checks that its last line is one
JSON object with every key of the summary, and that B1, B2, B3 and B4 ran
(their values are not null). The targets' values are not checked: a ratio may
miss on a loaded machine, and the test must not depend on timing. The Go keys
and demo_rows_per_s may be null (no `go`, no module proxy, no outbox_demo).
Exit code 0 when the run holds to that, 1 otherwise.
"""

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# The summary's keys (bench/run.py's docstring); a key missing here fails.
SUMMARY_KEYS = [
    "latency_p50_ratio", "latency_p99_ratio", "batch_throughput_ratio", "threads16_ratio",
    "cpu_per_msg_ratio", "b1_cpu_per_msg_ratio", "b2_cpu_per_msg_ratio", "b3_cpu_per_msg_ratio",
    "rss_growth_mib", "demo_rows_per_s",
    "go_default_1_msgs_per_s", "go_1_msgs_per_s", "go_default_16_msgs_per_s", "go_16_msgs_per_s",
    "go_1_ratio", "go_16_ratio",
]
# One key per scenario that must have run: B1, B2, B3, B4.
RAN = {"B1": "latency_p50_ratio", "B2": "batch_throughput_ratio", "B3": "threads16_ratio",
       "B4": "rss_growth_mib"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", required=True, help="the build folder with bench/ built")
    args = parser.parse_args()
    proc = subprocess.run([sys.executable, os.path.join(HERE, "run.py"), "--quick", "--build",
                           args.build], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    print(proc.stdout, end="", flush=True)
    problems = []
    lines = proc.stdout.rstrip("\n").splitlines()
    summary = None
    try:
        summary = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError as e:
        problems.append(f"the last line is not JSON ({e}): {lines[-1]!r}")
    if summary is not None and not isinstance(summary, dict):
        problems.append(f"the last line is JSON but not an object: {lines[-1]!r}")
        summary = None
    if summary is None and not problems:
        problems.append("run.py printed nothing")
    if summary is not None:
        missing = [k for k in SUMMARY_KEYS if k not in summary]
        if missing:
            problems.append("summary keys missing: " + ", ".join(missing))
        for scenario, key in RAN.items():
            if summary.get(key) is None:
                problems.append(f"{scenario} did not run: {key} is null")
    if proc.returncode != 0:
        problems.append(f"run.py exited with {proc.returncode}")
    for p in problems:
        print("check_quick: " + p, file=sys.stderr)
    if not problems:
        print("check_quick: the last line is the summary JSON with every key; B1-B4 ran")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

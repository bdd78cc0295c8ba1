#!/usr/bin/env python3
"""The report's charts, drawn with matplotlib: docs/benchmarks.png (B1's
latency distribution, B2 and B3 throughput) and docs/benchmarks-CURVE.png per
scaling curve. matplotlib is installed into a venv under build/ when this
python lacks it; the drawing then runs in that venv's python, which calls
this file again:

    bench/charts.py --plot DATA.json PNG          (docs/benchmarks.png)
    bench/charts.py --plot-curve DATA.json PNG    (one curve)
"""

import json
import os
import subprocess
import sys
import tempfile

from bench_common import ROOT, log
from curves import CURVES, x_text

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


def draw(python, how, data, png_path):
    """Has `python` (one with matplotlib) run this file to draw `data` into
    png_path; `how` is --plot or --plot-curve."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(data, f)
        path = f.name
    try:
        subprocess.run([python, os.path.abspath(__file__), how, path, png_path], check=True)
    finally:
        os.unlink(path)


def thousands(axis):
    """Writes an axis's numbers as 1,000,000 and 0.5, not with a 1e6 offset."""
    from matplotlib.ticker import FuncFormatter
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.7g}"))


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
        thousands(ax.yaxis)
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
    draw(ensure_matplotlib(), "--plot", data, png_path)


# ---------------------------------------------------------------------------
# Scaling curves (bench/scaling, issue 13): how cost grows with the work.
# curves.py runs, prints and tables them; their charts are drawn here.


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
        thousands(ax.yaxis)
        ax.set_title(label)
        ax.grid(True, alpha=0.3)
        ax.legend()
    ax = axes[-1]
    # Not blue and orange: those are raw and ours in the other panels.
    for (m, label), color in zip(metrics, ("tab:green", "tab:purple")):
        ratios = []
        for p in points:
            o, r = p.get(f"ours_{m}"), p.get(f"raw_{m}")
            # A growth under 1 MiB is page-level noise: no ratio.
            ratios.append(o / r if o is not None and r and not (m == "growth_mib" and r < 1)
                          else None)
        ax.plot(xs, [r if r is not None else float("nan") for r in ratios], marker="^",
                color=color, label=label)
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_title("ratio ours / raw")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    for ax in axes:
        if data["log_x"]:
            ax.set_xscale("log")
        # Ticks and grid lines at the measured points only: a log axis's
        # minor ticks (2, 3, ... 9 per decade) mark nothing that was measured.
        ax.set_xticks(xs)
        ax.set_xticklabels(labels)
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xlabel(data["x_label"])
    fig.suptitle(data["title"])
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)


def write_curve_charts(curves, info, folder=os.path.join(ROOT, "docs")):
    """One PNG per curve that ran: FOLDER/benchmarks-CURVE.png (docs/ by default)."""
    python = ensure_matplotlib()
    for name, data in curves.items():
        if data is None or not any(p.get("run") for p in data.get("points", [])):
            continue
        spec = CURVES[name]
        points = []
        for p in data["points"]:
            q = dict(p)
            q["label"] = x_text(name, p)
            points.append(q)
        chart = {"metrics": spec["metrics"], "points": points, "log_x": spec["log_x"],
                 "x_label": spec["x_label"],
                 "title": f"Scaling: {spec['title']}\ndispatch-kafka against raw librdkafka, same "
                          f"broker ({data.get('broker')}), same run ({info['nproc']} cores, {info['date']})"}
        png = os.path.join(folder, f"benchmarks-{name}.png")
        draw(python, "--plot-curve", chart, png)
        log(f"wrote {os.path.relpath(png, ROOT) if png.startswith(ROOT + os.sep) else png}")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--plot":
        plot(sys.argv[2], sys.argv[3])
        return 0
    if len(sys.argv) == 4 and sys.argv[1] == "--plot-curve":
        plot_curve(sys.argv[2], sys.argv[3])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())

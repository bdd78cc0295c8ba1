"""The scaling curves (bench/scaling, issue 13): how cost grows with the work.
run_curves runs them, log_curves prints them, scaling_sections writes their
part of docs/benchmarks.md; charts.py draws docs/benchmarks-CURVE.png from
CURVES and x_text."""

import os

from bench_common import fmt, last_json, log, run


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


def curve_value(point, key):
    if key.startswith("ratio:"):
        m = key.split(":", 1)[1]
        o, r = point.get("ours_" + m), point.get("raw_" + m)
        return o / r if o is not None and r else None
    return point.get(key)


def x_text(name, point):
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
            v = (p.get("ratio") if name == "memory" else curve_value(p, "ratio:" + m)) \
                if p.get("run") else None
            parts.append(f"{x_text(name, p)}: {fmt(v, '.2f') if p.get('run') else 'not run'}")
        failed = f", {data['failures']} failed messages" if data.get("failures") else ""
        what = "RSS growth" if name == "memory" else m
        log(f"  {name:12} {what} ratio  " + ", ".join(parts) + f"  ({data.get('seconds')} s{failed})")


def _bend(name, points):
    """Where the curve bends, from the measured points (one sentence)."""
    ran = [p for p in points if p.get("run")]
    if len(ran) < 2:
        return "Too few points ran to say where the curve bends."
    def ratio_span(m):
        rs = [curve_value(p, "ratio:" + m) for p in ran]
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
                 f"{x_text(name, bend)} on" if bend else "MB/s keeps growing with the size")
        return (f"{where}: ours {first['ours_mb_per_s']:,.0f} -> {last['ours_mb_per_s']:,.0f} MB/s "
                f"and raw {first['raw_mb_per_s']:,.0f} -> {last['raw_mb_per_s']:,.0f} MB/s from "
                f"{x_text(name, first)} to {x_text(name, last)}; ratio {ratio_span('mb_per_s')}.")
    if name == "callers":
        peak_o = max(ran, key=lambda p: p["ours_msgs_per_s"])
        peak_r = max(ran, key=lambda p: p["raw_msgs_per_s"])
        return (f"msg/s peaks at {x_text(name, peak_o)} threads on our side "
                f"({peak_o['ours_msgs_per_s']:,.0f}) and at {x_text(name, peak_r)} on the raw "
                f"side ({peak_r['raw_msgs_per_s']:,.0f}); CPU per message goes from "
                f"{ran[0]['ours_cpu_us_per_msg']:.0f} us (1 thread) to "
                f"{ran[-1]['ours_cpu_us_per_msg']:.0f} us ({x_text(name, ran[-1])}) on ours and "
                f"{ran[0]['raw_cpu_us_per_msg']:.0f} -> {ran[-1]['raw_cpu_us_per_msg']:.0f} us raw; "
                f"msg/s ratio {ratio_span('msgs_per_s')}.")
    if name == "partitions":
        steps = [(a["ours_msgs_per_s"] / b["ours_msgs_per_s"], a, b) for a, b in zip(ran, ran[1:])]
        drop, a, b = max(steps, key=lambda t: t[0])
        return (f"The steepest fall is from {x_text(name, a)} to {x_text(name, b)} partitions "
                f"({drop:.1f}x fewer msg/s on our side); from {x_text(name, ran[0])} to "
                f"{x_text(name, ran[-1])} ours falls {ran[0]['ours_msgs_per_s'] / ran[-1]['ours_msgs_per_s']:.0f}x "
                f"and raw {ran[0]['raw_msgs_per_s'] / ran[-1]['raw_msgs_per_s']:.0f}x; ratio "
                f"{ratio_span('msgs_per_s')}.")
    if name == "compression":
        base = ran[0]
        parts = []
        for p in ran[1:]:
            w = p.get("ours_wire_bytes_per_msg")
            bw = base.get("ours_wire_bytes_per_msg")
            parts.append(f"{x_text(name, p)} sends {fmt(w and bw and bw / w, '.1f')}x fewer bytes "
                         f"than {x_text(name, base)} for {fmt(p['ours_cpu_us_per_msg'] - base['ours_cpu_us_per_msg'], '+.2f')} us "
                         f"of CPU per message on our side "
                         f"({fmt(p['raw_cpu_us_per_msg'] - base['raw_cpu_us_per_msg'], '+.2f')} us raw)")
        return "; ".join(parts) + f"; CPU ratio {ratio_span('cpu_us_per_msg')}."
    if name == "memory":
        last = ran[-1]
        return (f"With {x_text(name, last)} messages in flight ours grows by "
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
                lines.append(f"| {x_text(name, p)} | not run: {reason} |" + " |" * (len(cols) - 2))
                continue
            cells = [x_text(name, p) if k == "x" else fmt(curve_value(p, k), f) for _, k, f in cols]
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

"""The benchmarks' targets and the ratios held to them: whether a figure
holds its target, and the target ratios of one B1, B2, B3 run."""

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


def target(key):
    """(comparison, bound) that key is held to."""
    return TARGETS[TARGET_OF.get(key, key)]


def target_text(key):
    """key's target as the report and the log write it, e.g. "<= 1.03"."""
    op, bound = target(key)
    return f"{op} {bound:g}"


def holds(key, value):
    """True or False against key's target; None when not run."""
    if value is None:
        return None
    op, bound = target(key)
    return value <= bound if op == "<=" else value >= bound


def verdict(key, value):
    ok = holds(key, value)
    if ok is None:
        return "not run"
    return ("holds" if ok else "MISSED") + f" ({target_text(key)})"


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

"""docs/benchmarks.md: the B1-B5 table with each target's verdict, how each
baseline is written, the levers table, then the sections of matrix.py,
kafka_go.py and curves.py, and the B8 section kept as it is."""

import os

import kafka_go
from bench_common import fmt
from curves import scaling_sections
from matrix import matrix_section
from targets import verdict

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

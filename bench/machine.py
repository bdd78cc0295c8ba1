"""What the report says about where it ran: the machine, the commit, and the
librdkafka that a build's benchmarks link."""

import datetime
import os
import platform
import subprocess
import sys

from bench_common import ROOT


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

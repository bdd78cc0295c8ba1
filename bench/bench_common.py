"""What the benchmark runner's modules and bench/kafka_go.py share: logging,
running a benchmark binary and reading the JSON line that ends its output,
and printing a figure that may be missing."""

import json
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log(text=""):
    print(text, flush=True)


def last_json(output):
    """The last line of `output` that is a JSON object, or None."""
    for line in reversed(output.splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                return None
    return None


def fmt(v, spec):
    return "n/a" if v is None else format(v, spec)


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


def build_dir(arg):
    """A build folder given on the command line, relative to the repository."""
    return arg if os.path.isabs(arg) else os.path.join(ROOT, arg)

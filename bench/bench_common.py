"""What bench/run.py and bench/kafka_go.py share: logging and reading the
JSON line that ends each benchmark's output."""

import json


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

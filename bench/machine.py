"""What a run's figures depend on: the machine, its CPU model and how fast one core runs Python today.

Machines of the same kind differ (one 2-core machine ran the writes scenario at 365-502 msg/s, another
at 2,100-2,400 with the same code), so every run prints a calibration beside its tables: the time one
core takes for a fixed piece of pure-Python work close to the server's own (JSON encoding and
decoding of a chat payload, string formatting, dict building). Compare figures across runs only
together with it.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

CALIBRATION_ROUNDS = 20_000


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ("unknown" elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def calibration_ms() -> float:
    """Milliseconds for CALIBRATION_ROUNDS encode/decode rounds of a chat payload (best of 3)."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for number in range(CALIBRATION_ROUNDS):
            message = {"id": number, "author": "Bench0", "kind": "user", "html": f"<p>message {number}</p>"}
            json.loads(json.dumps({"room": 1, "messages": [message]}))
        best = min(best, time.perf_counter() - started)
    return best * 1000


def describe() -> str:
    """One line: cores, CPU model, Python, platform and the calibration time."""
    return (
        f"Machine: {os.cpu_count()} cores ({cpu_model()}), Python {platform.python_version()}, "
        f"{platform.platform()}; calibration {calibration_ms():.0f} ms "
        f"({CALIBRATION_ROUNDS:,} JSON rounds of a chat payload on one core; lower is faster)"
    )


if __name__ == "__main__":
    print(describe())

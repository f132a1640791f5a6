"""Start-up: seconds from `python -m chatapp` to the first 200 from /healthz and from the sign-in page.

Usage: .venv/bin/python -m bench.startup [--runs 5]
Each run uses a fresh data dir (so it includes creating the SQLite file and migrating it) and a
second start on the same dir (already migrated).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def time_start(data_dir: Path) -> tuple[float, float]:
    """(seconds to /healthz 200, seconds to the sign-in page 200) for one start."""
    port = _free_port()
    env = {**os.environ, "CHATAPP_DATA_DIR": str(data_dir), "CHATAPP_PORT": str(port), "CHATAPP_LOG_LEVEL": "warning"}
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "chatapp"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=1, trust_env=False) as client:
            while True:
                if time.monotonic() - started > 30:
                    raise RuntimeError("chatapp did not start within 30 s")
                try:
                    if client.get("/healthz").status_code == 200:
                        health = time.monotonic() - started
                        break
                except httpx.TransportError:
                    time.sleep(0.02)
            assert client.get("/sign-in").status_code == 200
            page = time.monotonic() - started
    finally:
        process.terminate()
        process.wait(timeout=10)
    return health, page


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args(argv).runs
    fresh, warm = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            fresh.append(time_start(Path(tmp) / "data"))
            warm.append(time_start(Path(tmp) / "data"))
    print("| start | /healthz p50 | /healthz max | sign-in page p50 | sign-in page max |")
    print("|---|---|---|---|---|")
    for label, rows in (("fresh data dir (creates + migrates SQLite)", fresh), ("existing data dir", warm)):
        health, page = [r[0] for r in rows], [r[1] for r in rows]
        print(
            f"| {label} | {statistics.median(health):.2f} s | {max(health):.2f} s | "
            f"{statistics.median(page):.2f} s | {max(page):.2f} s |"
        )


if __name__ == "__main__":
    main()

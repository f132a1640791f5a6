"""The whole benchmark suite: `python -m bench` runs every scenario and prints their tables.

Each scenario is also a command of its own (python -m bench.fanout, .memory, .writes, .history,
.startup, .ai_stream, .socket_fanout, .bus_cost, .scaleout, .steps) with options; docs/BENCHMARKS.md holds the results
and the machine they ran on.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys

from bench import ai_stream, bus_cost, fanout, history, machine, memory, scaleout, socket_fanout, startup, steps, writes

SCENARIOS = [
    ("Start-up: seconds until pages are served", startup.main, []),
    (
        "a/b. Fan-out: one message to N live clients, chatapp vs a bare python-socketio server",
        fanout.main,
        ["--rounds", "15"],
    ),
    ("c. Memory: server RSS per connected client, room of 50 messages", memory.main, []),
    ("d. History: open and page back through 1,000,000 messages (server-side)", history.main, []),
    ("e. Writes: 20 concurrent posters, saved and delivered", writes.main, []),
    ("f. AI streaming: a 500-token reply at 50 tokens/s to N live clients", ai_stream.main, []),
    (
        "g. Room socket: one message to N Phoenix clients vs a bare Starlette WebSocket; posts by 20 bots",
        socket_fanout.main,
        [],
    ),
    (
        "h. The bus between processes: writes on PostgreSQL with it in memory, over NOTIFY, over Redis",
        bus_cost.main,
        [],
    ),
    (
        "i. Several processes behind nginx: fan-out against python-socketio with Redis; writes against one",
        scaleout.main,
        [],
    ),
    ("j. Live tabs in one process, stepped 250 ... 2,000: p99 and memory against the bare server", steps.main, []),
]


def main() -> None:
    argparse.ArgumentParser(prog="python -m bench", description=__doc__).parse_args()
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    print(f"# chatapp benchmarks, {datetime.date.today()}")
    print(f"{machine.describe()}\n")
    for title, run, argv in SCENARIOS:
        print(f"## {title}\n", flush=True)
        run(argv)
        print(flush=True)


if __name__ == "__main__":
    sys.exit(main())

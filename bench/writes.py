"""Scenario e: messages per second saved and delivered, with 20 concurrent posters.

Usage: .venv/bin/python -m bench.writes [--posters 20] [--messages 100]
Starts `python -m chatapp`; 20 browser-like tabs (bench/browserlike.py) each type and send their
messages as fast as the socket takes them, while a watcher tab of another user counts arrivals. The
rate is all messages / (time from the first send until the watcher has the last one). A message
reaches the watcher only after its commit, so "delivered" implies "saved".
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from bench.browserlike import open_tab
from bench.fanout import open_room_with_tabs, server


async def measure_writes(base: str, posters: int, messages: int) -> dict[str, float]:
    room = await open_room_with_tabs(base, 1, f"writes {posters}")
    try:
        room_path = room.poster.page.url.split(base, 1)[1]
        tabs = [room.poster] + [await open_tab(base, room.https[0], room_path) for _ in range(posters - 1)]
        room.viewers += tabs[1:]
        total = posters * messages
        seen: set[str] = set()
        done = asyncio.get_running_loop().create_future()

        def count(text: str) -> None:
            for token in text.split("w-")[1:]:
                seen.add(token.split("-end", 1)[0])
            if len(seen) >= total and not done.done():
                done.set_result(time.monotonic())

        room.viewers[0].listeners.append(count)
        await asyncio.sleep(1)

        async def post_all(number: int) -> None:
            for i in range(messages):
                await room.post(f"w-{number}.{i}-end", tabs[number])

        started = time.monotonic()
        await asyncio.gather(*(post_all(n) for n in range(posters)))
        sent = time.monotonic()
        finished = await asyncio.wait_for(done, timeout=120)
        return {
            "posters": posters,
            "messages": total,
            "send_seconds": sent - started,
            "seconds": finished - started,
            "per_second": total / (finished - started),
        }
    finally:
        await room.close()


def run(posters: int, messages: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        env = {"CHATAPP_DATA_DIR": str(Path(tmp) / "data"), "CHATAPP_LOG_LEVEL": "warning"}
        with server(["-m", "chatapp"], env) as running:
            return asyncio.run(measure_writes(running.base, posters, messages))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posters", type=int, default=20)
    parser.add_argument("--messages", type=int, default=100, help="per poster")
    args = parser.parse_args(argv)
    row = run(args.posters, args.messages)
    print("| posters | messages | all sent after | all delivered after | saved and delivered per second |")
    print("|---|---|---|---|---|")
    print(
        f"| {row['posters']} | {row['messages']} | {row['send_seconds']:.2f} s | {row['seconds']:.2f} s | "
        f"{row['per_second']:.0f} |"
    )


if __name__ == "__main__":
    main()

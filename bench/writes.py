"""Scenario e: messages per second saved and delivered, with 20 concurrent posters.

Usage: .venv/bin/python -m bench.writes [--posters 20] [--messages 100]
Starts `python -m chatapp`; 20 browser-like tabs (bench/browserlike.py) each type and send their
messages as fast as the socket takes them, while a watcher tab of another user counts arrivals. The
rate is all messages / (time from the first send until the watcher has the last one). A message
reaches the watcher only after its commit, so "delivered" implies "saved". The same run against a
bare python-socketio server (a post event broadcast to every socket) is the stack's own limit.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx

from bench.browserlike import Page, Tab, open_tab
from bench.fanout import bare_payload, bare_server, fresh_chatapp, open_room_with_tabs


class Arrivals:
    """Counts distinct messages ("w-<poster>.<n>-end") a watcher has received."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.seen: set[str] = set()
        self.done = asyncio.get_running_loop().create_future()

    def __call__(self, text: str) -> None:
        for token in text.split("w-")[1:]:
            self.seen.add(token.split("-end", 1)[0])
        if len(self.seen) >= self.total and not self.done.done():
            self.done.set_result(time.monotonic())


async def timed(posters: int, messages: int, watcher: Tab, post: Callable[[int, str], Awaitable[None]]) -> dict:
    """All posters send their messages at once; seconds until the watcher has every one."""
    arrivals = Arrivals(posters * messages)
    watcher.listeners.append(arrivals)
    await asyncio.sleep(1)

    async def post_all(number: int) -> None:
        for i in range(messages):
            await post(number, f"w-{number}.{i}-end")

    started = time.monotonic()
    await asyncio.gather(*(post_all(n) for n in range(posters)))
    sent = time.monotonic()
    finished = await asyncio.wait_for(arrivals.done, timeout=120)
    total = posters * messages
    return {
        "messages": total,
        "send_seconds": sent - started,
        "seconds": finished - started,
        "per_second": total / (finished - started),
    }


async def chatapp_writes(base: str, posters: int, messages: int) -> dict:
    """Scenario e on a running chatapp: posters are tabs of the room's owner; the watcher another user's."""
    room = await open_room_with_tabs(base, 1, f"writes {posters}")
    try:
        room_path = room.poster.page.url.split(base, 1)[1]
        tabs = [room.poster] + [await open_tab(base, room.https[0], room_path) for _ in range(posters - 1)]
        room.viewers += tabs[1:]
        return await timed(posters, messages, room.viewers[0], lambda n, text: room.post(text, tabs[n]))
    finally:
        await room.close()


async def bare_writes(base: str, posters: int, messages: int) -> dict:
    """The same on a bare python-socketio server: a post event is broadcast to every socket."""
    page = Page(url=base, query={"client_id": "bare"}, elements={})
    tabs = [Tab(base_url=base, page=page, cookies=httpx.Cookies()) for _ in range(posters + 1)]
    for tab in tabs:
        await tab.connect()
    try:

        async def post(number: int, text: str) -> None:
            await tabs[number].sio.emit("post", bare_payload(text))

        return await timed(posters, messages, tabs[-1], post)
    finally:
        for tab in tabs:
            await tab.close()


def run(posters: int, messages: int) -> dict[str, float]:
    with fresh_chatapp() as running:
        app = asyncio.run(chatapp_writes(running.base, posters, messages))
    with bare_server() as running:
        bare = asyncio.run(bare_writes(running.base, posters, messages))
    return {"posters": posters, **app, "bare_per_second": bare["per_second"]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posters", type=int, default=20)
    parser.add_argument("--messages", type=int, default=100, help="per poster")
    args = parser.parse_args(argv)
    row = run(args.posters, args.messages)
    print(
        "| posters | messages | all sent after | all delivered after | chatapp: saved and delivered/s | "
        "bare socket.io: delivered/s | chatapp/bare |"
    )
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {row['posters']} | {row['messages']} | {row['send_seconds']:.2f} s | {row['seconds']:.2f} s | "
        f"{row['per_second']:.0f} | {row['bare_per_second']:.0f} | {row['per_second'] / row['bare_per_second']:.2f} |"
    )


if __name__ == "__main__":
    main()

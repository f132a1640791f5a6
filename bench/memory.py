"""Scenario c: server memory per connected client viewing a room with 50 messages.

Usage: .venv/bin/python -m bench.memory [--clients 500] [--messages 50]
Starts `python -m chatapp`, posts the messages, opens a few warm-up tabs, reads the server's RSS,
opens N more browser-like tabs of the room (bench/browserlike.py), waits for the server to settle
and reads the RSS again: (after - before) / N is the cost of one connected client.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from bench.browserlike import open_tab
from bench.fanout import Server, fresh_chatapp, open_room_with_tabs

WARM_UP_TABS = 10


async def settle(running: Server, seconds: float = 2.0) -> int:
    """Wait until the RSS stops growing (or `seconds` pass); return it in KiB."""
    deadline, last = time.monotonic() + seconds, running.rss_kib()
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        now = running.rss_kib()
        if now <= last:
            return now
        last = now
    return last


async def measure_memory(running: Server, clients: int, messages: int) -> dict[str, float]:
    room = await open_room_with_tabs(running.base, WARM_UP_TABS, f"memory {clients}")
    try:
        # Saved and delivered (to any tab: a tab whose socket was still joining when a message went
        # out would fetch it on its next connect in a browser; these protocol-level tabs do not).
        # Expected before posting: on a fast machine the last message arrives before the loop ends.
        markers = [viewer.expect(f"message {messages - 1}:") for viewer in room.viewers]
        for number in range(messages):
            await room.post(f"message {number}: a line of ordinary chat, with **some** markdown")
            await asyncio.sleep(0.01)
        done, _ = await asyncio.wait(markers, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        if not done:
            raise TimeoutError("no tab received the last message")
        before = await settle(running)
        room_path = room.viewers[0].page.url.split(running.base, 1)[1]
        for number in range(clients):
            http = room.https[1 + number % (len(room.https) - 1)]
            room.viewers.append(await open_tab(running.base, http, room_path))
        after = await settle(running, seconds=5)
        return {
            "clients": clients,
            "messages": messages,
            "rss_before_mib": before / 1024,
            "rss_after_mib": after / 1024,
            "per_client_kib": (after - before) / clients,
        }
    finally:
        await room.close()


def run(clients: int, messages: int) -> dict[str, float]:
    with fresh_chatapp() as running:
        return asyncio.run(measure_memory(running, clients, messages))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--messages", type=int, default=50)
    args = parser.parse_args(argv)
    row = run(args.clients, args.messages)
    print("| N clients | messages in room | server RSS before | after | per connected client |")
    print("|---|---|---|---|---|")
    print(
        f"| {row['clients']} | {row['messages']} | {row['rss_before_mib']:.1f} MiB | "
        f"{row['rss_after_mib']:.1f} MiB | {row['per_client_kib']:.0f} KiB |"
    )


if __name__ == "__main__":
    main()

"""Scenario g: the room socket. One message to N room-socket clients against a bare Starlette WebSocket
broadcast of the same frame; and posts per second through the socket by 20 bots against the UI's
writes scenario, in the same run.

Usage: .venv/bin/python -m bench.socket_fanout [--clients 100 500 1000] [--rounds 10] [--bots 20]
A person's token (made with `python -m chatapp create-token` before the server starts) opens N sockets
that join one room; each round posts a message through the REST API and takes the time until every
socket has its message_posted push. The bare server gets the same N sockets and the same frame text
(POST /broadcast), twice: with uvicorn's default permessage-deflate, and without it, as chatapp serves
its room socket (chatapp/server.py). Then 20 bot accounts, each on its own socket, push 100 posts each without waiting
for the replies, and a watcher socket counts them in: saved (the push comes after the commit) and
delivered per second, beside bench.writes' UI posters on a fresh server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import websockets

from bench import writes
from bench.fanout import percentile, server

SOCKET = "/api/socket/websocket?vsn=2.0.0&token="


class Watcher:
    """A socket's frames, scanned for markers: futures resolve with the arrival time."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.waiting: dict[str, asyncio.Future[float]] = {}
        self.counted: set[str] = set()
        self.reader = asyncio.get_running_loop().create_task(self._read())
        self.heart = asyncio.get_running_loop().create_task(self._beat())

    async def _beat(self) -> None:
        """A heartbeat every 30 s, as phoenix.js sends (the server closes a socket silent for 60 s)."""
        with contextlib.suppress(websockets.ConnectionClosed):
            for number in itertools.count():
                await asyncio.sleep(30)
                await self.ws.send(json.dumps([None, f"hb{number}", "phoenix", "heartbeat", {}]))

    def expect(self, marker: str) -> asyncio.Future[float]:
        future = self.waiting[marker] = asyncio.get_running_loop().create_future()
        return future

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            await self._read_frames()

    async def _read_frames(self) -> None:
        async for text in self.ws:
            for marker, future in list(self.waiting.items()):
                if marker in text and not future.done():
                    future.set_result(time.monotonic())
                    del self.waiting[marker]
            if "w-" in text and "message_posted" in text:
                for token in str(text).split("w-")[1:]:
                    self.counted.add(token.split("-end", 1)[0])


async def joined_socket(base: str, token: str, room_id: int) -> websockets.ClientConnection:
    ws = await websockets.connect(base.replace("http", "ws") + SOCKET + token, max_queue=None)
    await ws.send(json.dumps(["1", "1", f"room:{room_id}", "phx_join", {}]))
    while '"phx_reply"' not in (reply := str(await ws.recv())):
        pass
    assert '"ok"' in reply, reply
    return ws


async def rounds_until_all(watchers: list[Watcher], send: Callable[[str], Awaitable[None]], rounds: int) -> list[float]:
    results = []
    for number in range(rounds):
        marker = f"sock-{number}-{time.time_ns()}"
        arrivals = [watcher.expect(marker) for watcher in watchers]
        started = time.monotonic()
        await send(marker)
        results.append(max(await asyncio.wait_for(asyncio.gather(*arrivals), timeout=60)) - started)
        await asyncio.sleep(0.2)
    return results


def _cli(data_dir: Path, *args: str, stdin: str = "") -> str:
    env = {"CHATAPP_DATA_DIR": str(data_dir), "CHATAPP_LOG_LEVEL": "warning", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "chatapp", *args], env=env, input=stdin, capture_output=True, text=True, check=True
    )
    return done.stdout.strip().splitlines()[-1]


def owner_token(data_dir: Path) -> str:
    _cli(data_dir, "create-user", "bench", "--password-stdin", stdin="bench password long enough\n")
    return _cli(data_dir, "create-token", "bench", "--name", "bench", "--scopes", "read", "write", "admin")


async def make_room(http: httpx.AsyncClient, name: str) -> int:
    response = await http.post("/api/v1/rooms", json={"name": name})
    response.raise_for_status()
    return int(response.json()["id"])


async def chatapp_fanout(base: str, token: str, clients: int, rounds: int) -> list[float]:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers) as http:
        room_id = await make_room(http, f"socket fan-out {clients}")
        watchers = [Watcher(await joined_socket(base, token, room_id)) for _ in range(clients)]  # each reads at once
        sockets = [watcher.ws for watcher in watchers]
        await asyncio.sleep(1)

        async def send(marker: str) -> None:
            (await http.post(f"/api/v1/rooms/{room_id}/messages", json={"body": marker})).raise_for_status()

        try:
            return await rounds_until_all(watchers, send, rounds)
        finally:
            for ws in sockets:
                await ws.close()


def bare_frame(marker: str) -> str:
    """The size and shape of chatapp's message_posted push, carrying the marker."""
    message = {
        "id": 12345,
        "room_id": 1,
        "participant_id": 2,
        "author_name": "bench",
        "author_kind": "user",
        "body": marker,
        "created_at": "2026-12-03T07:00:00.000000Z",
        "status": "complete",
        "edited_at": None,
        "client_message_id": None,
    }
    return json.dumps([None, None, "room:1", "message_posted", {"message": message}], separators=(",", ":"))


async def bare_fanout(base: str, clients: int, rounds: int) -> list[float]:
    sockets = [await websockets.connect(base.replace("http", "ws") + "/ws", max_queue=None) for _ in range(clients)]
    watchers = [Watcher(ws) for ws in sockets]
    await asyncio.sleep(0.5)
    async with httpx.AsyncClient(base_url=base) as http:

        async def send(marker: str) -> None:
            await http.post("/broadcast", content=bare_frame(marker))

        try:
            return await rounds_until_all(watchers, send, rounds)
        finally:
            for ws in sockets:
                await ws.close()


async def bot_posts(base: str, token: str, bots: int, messages: int) -> float:
    """Bots post as fast as their sockets take it; messages saved and delivered per second."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers) as http:
        room_id = await make_room(http, "socket posts")
        tokens = []
        for number in range(bots):
            bot = await http.post("/api/v1/bots", json={"username": f"bot{number}", "display_name": f"Bot {number}"})
            made = await http.post(
                "/api/v1/tokens", json={"name": "b", "scopes": ["read", "write"], "bot_id": bot.json()["id"]}
            )
            await http.post(f"/api/v1/rooms/{room_id}/bots", json={"username": f"bot{number}"})
            tokens.append(made.json()["value"])
        watcher = Watcher(await joined_socket(base, token, room_id))
        bots_reading = [Watcher(await joined_socket(base, bot_token, room_id)) for bot_token in tokens]
        sockets = [bot.ws for bot in bots_reading]
        await asyncio.sleep(1)

        async def post_all(number: int, ws: websockets.ClientConnection) -> None:
            for i in range(messages):
                push = ["1", f"p{i}", f"room:{room_id}", "post", {"body": f"w-{number}.{i}-end"}]  # its join_ref
                await ws.send(json.dumps(push))

        started = time.monotonic()
        await asyncio.gather(*(post_all(n, ws) for n, ws in enumerate(sockets)))
        while len(watcher.counted) < bots * messages and time.monotonic() - started < 120:
            await asyncio.sleep(0.01)
        took = time.monotonic() - started
        for ws in [watcher.ws, *sockets]:
            await ws.close()
        return len(watcher.counted) / took


def run(clients_list: list[int], rounds: int, bots: int, messages: int = 100) -> tuple[list[dict], dict]:
    """Both fan-outs for each N (a fresh chatapp data dir per N), then the bots' posts against the UI's."""
    rows = []
    for clients in clients_list:
        with tempfile.TemporaryDirectory() as tmp:
            data_dir = Path(tmp) / "data"
            token = owner_token(data_dir)
            env = {"CHATAPP_DATA_DIR": str(data_dir), "CHATAPP_LOG_LEVEL": "warning", "CHATAPP_MESSAGE_BURST": "0"}
            with server(["-m", "chatapp"], env) as running:
                app = asyncio.run(chatapp_fanout(running.base, token, clients, rounds))
        with server(["-m", "bench.bare_ws_server", "{port}"]) as running:
            bare = asyncio.run(bare_fanout(running.base, clients, rounds))
        with server(["-m", "bench.bare_ws_server", "{port}", "--no-deflate"]) as running:
            bare_no_deflate = asyncio.run(bare_fanout(running.base, clients, rounds))
        rows.append({"clients": clients, "app": app, "bare": bare, "bare_no_deflate": bare_no_deflate})
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        token = owner_token(data_dir)
        env = {
            "CHATAPP_DATA_DIR": str(data_dir),
            "CHATAPP_LOG_LEVEL": "warning",
            "CHATAPP_MESSAGE_BURST": "0",
            "CHATAPP_SOCKET_FRAMES_BURST": "1000",
        }
        with server(["-m", "chatapp"], env) as running:
            socket_rate = asyncio.run(bot_posts(running.base, token, bots, messages))
    ui = writes.run(bots, messages)
    return rows, {"bots": bots, "socket_per_second": socket_rate, "ui_per_second": ui["per_second"]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, nargs="+", default=[100, 500, 1000])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--bots", type=int, default=20)
    args = parser.parse_args(argv)
    rows, posts = run(args.clients, args.rounds, args.bots)
    print(
        "| N sockets | chatapp p50 | p99 | bare Starlette WS p50 (deflate) | p99 | chatapp/bare (p50) "
        "| bare p50 (no deflate) | p99 | chatapp/bare no deflate (p50) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        app, bare, plain = row["app"], row["bare"], row["bare_no_deflate"]
        print(
            f"| {row['clients']} | {statistics.median(app) * 1000:.1f} ms | {percentile(app, 0.99) * 1000:.1f} ms | "
            f"{statistics.median(bare) * 1000:.1f} ms | {percentile(bare, 0.99) * 1000:.1f} ms | "
            f"{statistics.median(app) / statistics.median(bare):.2f} | "
            f"{statistics.median(plain) * 1000:.1f} ms | {percentile(plain, 0.99) * 1000:.1f} ms | "
            f"{statistics.median(app) / statistics.median(plain):.2f} |"
        )
    print()
    print("| bots | socket posts saved and delivered/s | UI writes (bench.writes) /s | socket/UI |")
    print("|---|---|---|---|")
    ratio = posts["socket_per_second"] / posts["ui_per_second"]
    print(f"| {posts['bots']} | {posts['socket_per_second']:.0f} | {posts['ui_per_second']:.0f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()

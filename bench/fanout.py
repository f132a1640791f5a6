"""Scenarios a and b: one message to N live clients of one room, against a bare python-socketio broadcast.

Usage: .venv/bin/python -m bench.fanout [--clients 1 50 200] [--rounds 5]
Prints a markdown table: for each N, p50/p99 over rounds of the time until *all* N clients have the
message, for chatapp (a: a tab clicks Send; the message is saved, published and delivered) and for
the bare server (b: an HTTP POST makes it emit one payload to all sockets), and the ratio a/b.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.browserlike import Page, Tab, open_tab, sign_up

TABS_PER_USER = 50  # browsers open many tabs; signing up one user per tab would only measure argon2
ROOM_LINK = re.compile(r"/rooms/\d+")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    base: str
    pid: int

    def rss_kib(self) -> int:
        """The server process's resident memory (VmRSS), in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")


@contextmanager
def server(args: list[str], env: dict[str, str] | None = None):
    """Run a server subprocess on a free port until /healthz answers; yields a Server (URL and pid).

    The port goes in CHATAPP_PORT and, where an argument contains "{port}", into that argument.
    """
    port = free_port()
    full_env = {**os.environ, **(env or {}), "CHATAPP_PORT": str(port)}
    full_env.pop("PYTEST_CURRENT_TEST", None)  # NiceGUI would think it runs inside pytest's own fixtures
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed in the finally below)
    process = subprocess.Popen(
        [sys.executable, *(a.format(port=port) for a in args)], env=full_env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90  # a busy machine may take long to start it; it returns at once when up
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        else:
            log.seek(0)
            raise RuntimeError(f"server {args} did not start:\n{log.read()[-3000:]}")
        yield Server(base, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@contextmanager
def fresh_chatapp(extra_env: dict[str, str] | None = None):
    """`python -m chatapp` on a new, empty data dir (with extra settings); yields its Server."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            "CHATAPP_DATA_DIR": str(Path(tmp) / "data"),
            "CHATAPP_LOG_LEVEL": "warning",
            "CHATAPP_MESSAGE_BURST": "0",  # the posters send far faster than a person: no per-person rate limit
            "CHATAPP_SIGN_UP_LIMIT": "0",  # N = 1,000 signs up 21 people from one address
            **(extra_env or {}),
        }
        with server(["-m", "chatapp"], env) as running:
            yield running


def bare_server():
    """The bare python-socketio server (bench/bare_server.py); a context manager yielding its Server."""
    return server(["-m", "bench.bare_server", "{port}"])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(tabs: list[Tab], send: Callable[[str], Awaitable[None]], rounds: int) -> list[float]:
    """Seconds until every tab received each of `rounds` messages."""
    results = []
    for round_no in range(rounds):
        marker = f"fanout-{round_no}-{time.time_ns()}"
        futures = [tab.expect(marker) for tab in tabs]
        started = time.monotonic()
        await send(marker)
        arrivals = await asyncio.wait_for(asyncio.gather(*futures), timeout=60)
        results.append(max(arrivals) - started)
        await asyncio.sleep(0.2)
    return results


@dataclass
class RoomTabs:
    """Signed-in HTTP clients, a poster tab and N viewer tabs, all in one new room."""

    https: list[httpx.AsyncClient]
    poster: Tab
    viewers: list[Tab]

    async def post(self, text: str, tab: Tab | None = None) -> None:
        """Send a message from a tab, as its composer does on Enter."""
        await (tab or self.poster).send_message(text)

    async def close(self) -> None:
        for tab in [self.poster, *self.viewers]:
            await tab.close()
        for http in self.https:
            await http.aclose()


async def open_room_with_tabs(
    base: str, clients: int, room_name: str, new_http: Callable[[int], httpx.AsyncClient] | None = None
) -> RoomTabs:
    """Sign up users (TABS_PER_USER tabs each), create a room, open the poster's and N viewers' tabs.
    `new_http(n)` makes user n's HTTP client (user 0 posts; viewer i is user 1 + i // TABS_PER_USER)."""
    make = new_http or (lambda _n: httpx.AsyncClient(base_url=base))
    https = [make(n) for n in range(max(1, -(-clients // TABS_PER_USER)) + 1)]
    for number, http in enumerate(https):
        await sign_up(http, f"bench{number}")
    poster_http = https[0]
    lobby = await open_tab(base, poster_http, "/")
    await lobby.fill("Room name", room_name)
    await lobby.click("Create room")
    await asyncio.sleep(0.5)
    await lobby.close()
    room = ROOM_LINK.findall((await poster_http.get("/")).text)[0]
    poster = await open_tab(base, poster_http, room)
    viewers = [await open_tab(base, https[1 + i // TABS_PER_USER], room) for i in range(clients)]
    return RoomTabs(https, poster, viewers)


async def chatapp_fanout(base: str, clients: int, rounds: int) -> list[float]:
    """Scenario a on a running chatapp."""
    room = await open_room_with_tabs(base, clients, f"fan-out {clients}")
    try:
        await asyncio.sleep(1)
        return await measure(room.viewers, room.post, rounds)
    finally:
        await room.close()


def bare_payload(marker: str) -> dict:
    """The shape and size of chatapp's live message event, carrying the marker."""
    message = {"id": 12345, "author": "Bench0", "kind": "user", "ts": "2026-11-26T22:00:00.000000+00:00"}
    return {"room": 1, "messages": [{**message, "html": f"<p>{marker}</p>"}]}


async def broadcast_rounds(http: httpx.AsyncClient, tabs: list[Tab], rounds: int) -> list[float]:
    """Rounds of the bare server's /broadcast (through `http`): seconds until all tabs have each."""

    async def send(marker: str) -> None:
        await http.post("/broadcast", json=bare_payload(marker))

    return await measure(tabs, send, rounds)


async def bare_fanout_to(tabs: list[Tab], http: httpx.AsyncClient, rounds: int, settle_s: float) -> list[float]:
    """Connect the bare server's tabs, let them settle, time the rounds, and close them."""
    for tab in tabs:
        await tab.connect()
    await asyncio.sleep(settle_s)
    try:
        return await broadcast_rounds(http, tabs, rounds)
    finally:
        for tab in tabs:
            await tab.close()


async def bare_fanout(base: str, clients: int, rounds: int) -> list[float]:
    """Scenario b: the same number of sockets on a bare python-socketio server."""
    page = Page(url=base, query={"client_id": "bare"}, elements={})
    tabs = [Tab(base_url=base, page=page, cookies=httpx.Cookies()) for _ in range(clients)]
    async with httpx.AsyncClient(base_url=base) as http:
        return await bare_fanout_to(tabs, http, rounds, settle_s=0.5)


def run(clients_list: list[int], rounds: int) -> list[dict[str, float]]:
    """Both scenarios for each N; a fresh chatapp data dir per N."""
    rows = []
    for clients in clients_list:
        with fresh_chatapp() as running:
            app = asyncio.run(chatapp_fanout(running.base, clients, rounds))
        with bare_server() as running:
            bare = asyncio.run(bare_fanout(running.base, clients, rounds))
        rows.append(
            {
                "clients": clients,
                "app_p50": statistics.median(app),
                "app_p99": percentile(app, 0.99),
                "bare_p50": statistics.median(bare),
                "bare_p99": percentile(bare, 0.99),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 50, 200, 500, 1000])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    print("| N clients | a: chatapp p50 | a: p99 | b: bare socket.io p50 | b: p99 | a/b (p50) |")
    print("|---|---|---|---|---|---|")
    for row in run(args.clients, args.rounds):
        print(
            f"| {row['clients']} | {row['app_p50'] * 1000:.1f} ms | {row['app_p99'] * 1000:.1f} ms | "
            f"{row['bare_p50'] * 1000:.1f} ms | {row['bare_p99'] * 1000:.1f} ms | "
            f"{row['app_p50'] / row['bare_p50']:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()

"""Scenario k: every sent message is saved exactly once, though the server is killed mid-run.

Usage: .venv/bin/python -m bench.restarts [--tabs 100] [--messages 100] [--interval 0.5]
                                          [--kill sigkill sigterm none] [--database sqlite postgresql]

`python -m chatapp` runs on a data dir (or a fresh PostgreSQL database) that outlives it. Browser-like
tabs (bench/browserlike.py) of two people in one room send their messages as the composer does: each
with a client message id, kept in the tab's outbox until the server confirms it (after the commit),
sent again after a reconnect or a reload, or when unconfirmed for a while. When half the messages
have been sent the server is killed (SIGKILL: no chance to save anything; SIGTERM: the graceful
path) and started again on the same port; the tabs find their page gone, load it again as a browser
does, and resend what was not confirmed. With `none` nothing is killed: the load alone (a slow or
dropped socket must not lose messages either).

At the end, once every outbox is empty, the database is read: each message sent must be there
exactly once. Prints one row per run: sent, saved once, lost, saved twice or more, resends, and the
seconds from the kill until the server answered again.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from bench.browserlike import Tab, load_page, sign_up
from bench.fanout import ROOM_LINK, free_port

RESEND_AFTER_S = 8.0  # what composer.js waits for a confirmation before it sends again, times the sends so far...
MAX_RESEND_AFTER_S = 30.0  # ...up to this
_RUN_METHOD = re.compile(r'runMethod\((\d+), "(\w+)", (\[.*\])\)', re.S)


class ChatappProcess:
    """`python -m chatapp` on a fixed port and database, which can be killed and started again."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env, "CHATAPP_PORT": str(self.port)}
        self.env.pop("PYTEST_CURRENT_TEST", None)
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed in stop)
        self.process: subprocess.Popen | None = None

    def start(self, deadline_s: float = 90) -> None:
        """Start the server and return once /healthz answers."""
        self.process = subprocess.Popen(
            [sys.executable, "-m", "chatapp"], env=self.env, stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.log.seek(0)
        raise RuntimeError(f"chatapp did not start:\n{self.log.read()[-3000:]}")

    def kill(self, sig: signal.Signals) -> None:
        """Send `sig` and wait for the process to end."""
        assert self.process is not None
        self.process.send_signal(sig)
        self.process.wait(timeout=60)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)
        self.log.close()


@dataclass
class Outgoing:
    text: str
    cid: str
    due: float  # when it is sent again if not confirmed by then
    sends: int = 0


@dataclass
class OutboxTab:
    """A tab whose composer keeps every message until the server confirms it, as composer.js does."""

    base: str
    http: httpx.AsyncClient
    path: str
    outbox: dict[str, Outgoing] = field(default_factory=dict)  # unconfirmed, in the order they were sent
    confirmed: set[str] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)  # texts that arrived on the socket (the message list)
    resends: int = 0
    reloads: int = 0
    legacy: bool = False  # send bare text and forget it, as pages did before the outbox (for comparison)
    tab: Tab | None = None
    composer_id: str = ""
    connected: bool = False

    async def open(self, deadline_s: float = 120) -> None:
        """Load the room page (again, after a restart: as a browser reloads) and connect its socket."""
        deadline = time.monotonic() + deadline_s
        while True:
            try:
                page = await load_page(self.http, self.path)
                tab = Tab(base_url=self.base, page=page, cookies=self.http.cookies)
                tab.listeners.append(self._on_text)
                tab.sio.on("disconnect", self._on_disconnect)
                await tab.connect()
                break
            except Exception:  # not up yet, or the page is gone mid-load: as a browser, try again
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)
        self.tab, self.composer_id, self.connected = tab, page.find_tag("nicegui-composer"), True
        for outgoing in list(self.outbox.values()):  # what was not confirmed: sent again, in order
            await self._emit(outgoing)

    def _on_disconnect(self, *_: object) -> None:
        self.connected = False

    def _on_text(self, raw: str) -> None:
        for token in raw.split("k-")[1:]:
            self.seen.add("k-" + token.split("-end", 1)[0] + "-end")
        if "runMethod" not in raw:
            return
        with contextlib.suppress(ValueError, TypeError):
            data = json.loads(raw)
            match = _RUN_METHOD.search(data.get("code", "")) if isinstance(data, dict) else None
            if match and match.group(1) == self.composer_id:
                self._on_method(match.group(2), json.loads(match.group(3)))

    def _on_method(self, name: str, args: list) -> None:
        cid = args[0] if args else None
        if name == "confirm" and cid in self.outbox:
            self.confirmed.add(cid)
            del self.outbox[cid]
        elif name == "retry" and cid in self.outbox:
            self.outbox[cid].due = time.monotonic() + float(args[2])
        elif name == "reject" and cid in self.outbox:
            raise RuntimeError(f"the server refused {self.outbox[cid].text}: {args[1]}")

    async def send(self, text_: str) -> None:
        """Put a message in the outbox and send it (if the socket is down, it waits for the next open)."""
        outgoing = Outgoing(text_, secrets.token_urlsafe(12), due=time.monotonic())
        if self.legacy:
            if self.connected and self.tab is not None:
                with contextlib.suppress(Exception):
                    await self.tab.emit_event(self.composer_id, "send", [text_])
            return
        self.outbox[outgoing.cid] = outgoing
        await self._emit(outgoing)

    async def _emit(self, outgoing: Outgoing) -> None:
        if not self.connected or self.tab is None:
            return
        self.resends += outgoing.sends > 0
        outgoing.sends += 1
        outgoing.due = time.monotonic() + min(RESEND_AFTER_S * outgoing.sends, MAX_RESEND_AFTER_S)
        try:
            await self.tab.emit_event(self.composer_id, "send", [{"cid": outgoing.cid, "text": outgoing.text}])
        except Exception:  # the socket went away between the check and the send: the outbox keeps it
            self.connected = False

    async def keep_connected(self, stop: asyncio.Event) -> None:
        """Reopen the page when the socket is lost; resend what waited too long for a confirmation."""
        while not stop.is_set():
            if not self.connected:
                if self.tab is not None:
                    with contextlib.suppress(Exception):
                        await self.tab.close()
                self.reloads += 1
                await self.open()
            now = time.monotonic()
            for outgoing in list(self.outbox.values()):
                if now > outgoing.due:
                    await self._emit(outgoing)
            await asyncio.sleep(0.25)

    async def close(self) -> None:
        if self.tab is not None:
            with contextlib.suppress(Exception):
                await self.tab.close()


async def create_room(base: str, http: httpx.AsyncClient) -> str:
    """A new room of the signed-in user; its path."""
    page = await load_page(http, "/")
    lobby = Tab(base_url=base, page=page, cookies=http.cookies)
    await lobby.connect()
    await lobby.fill("Room name", f"restarts {secrets.token_hex(3)}")
    await lobby.click("Create room")
    await asyncio.sleep(1)
    await lobby.close()
    return ROOM_LINK.findall((await http.get("/")).text)[0]


async def join(http: httpx.AsyncClient, base: str, path: str) -> None:
    """The second person joins the (public) room with its "Join room" button."""
    page = await load_page(http, path)
    tab = Tab(base_url=base, page=page, cookies=http.cookies)
    await tab.connect()
    await tab.click("Join room")
    await asyncio.sleep(1)
    await tab.close()


async def drive(server: ChatappProcess, args: argparse.Namespace, kill: str) -> dict:
    """Open the tabs, send, kill and restart midway, wait for every outbox to empty; the tabs' counts."""
    https = [httpx.AsyncClient(base_url=server.base, timeout=30) for _ in range(2)]
    for number, http in enumerate(https):
        await sign_up(http, f"restarts{number}")
    path = await create_room(server.base, https[0])
    await join(https[1], server.base, path)
    tabs = [OutboxTab(server.base, https[i % 2], path, legacy=args.no_outbox) for i in range(args.tabs)]
    for tab in tabs:
        await tab.open()
    stop = asyncio.Event()
    keepers = [asyncio.create_task(tab.keep_connected(stop)) for tab in tabs]
    total, sent = args.tabs * args.messages, 0
    outage = {"seconds": 0.0}

    async def send_all(number: int, tab: OutboxTab) -> None:
        nonlocal sent
        await asyncio.sleep(args.interval * number / args.tabs)  # spread the tabs over one interval
        for i in range(args.messages):
            await tab.send(f"k-{number}.{i}-end")
            sent += 1
            await asyncio.sleep(args.interval)

    async def kill_midway() -> None:
        while sent < total // 2:
            await asyncio.sleep(0.05)
        if kill == "none":
            return
        killed = time.monotonic()
        server.kill(signal.SIGKILL if kill == "sigkill" else signal.SIGTERM)
        await asyncio.to_thread(server.start)
        outage["seconds"] = time.monotonic() - killed

    started = time.monotonic()
    await asyncio.gather(kill_midway(), *(send_all(n, tab) for n, tab in enumerate(tabs)))
    deadline = time.monotonic() + args.settle
    while any(tab.outbox for tab in tabs) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    finished = time.monotonic()
    stop.set()
    await asyncio.gather(*keepers, return_exceptions=True)
    for tab in tabs:
        await tab.close()
    for http in https:
        await http.aclose()
    sent_texts = [f"k-{n}.{i}-end" for n in range(args.tabs) for i in range(args.messages)]
    own_seen = sum(len({t for t in tab_texts(n, args.messages)} & tab.seen) for n, tab in enumerate(tabs))
    return {
        "sent": sent_texts,
        "unconfirmed": sum(len(tab.outbox) for tab in tabs),
        "resends": sum(tab.resends for tab in tabs),
        "reloads": sum(tab.reloads for tab in tabs),
        "own_seen": own_seen,
        "outage_s": outage["seconds"],
        "seconds": finished - started,
    }


def tab_texts(number: int, messages: int) -> list[str]:
    return [f"k-{number}.{i}-end" for i in range(messages)]


def saved_counts(url: str) -> dict[str, int]:
    """How many times each bench message is in the database."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT body, count(*) FROM messages WHERE body LIKE 'k-%' GROUP BY body"))
            return {body: count for body, count in rows}
    finally:
        engine.dispose()


@contextlib.contextmanager
def database(kind: str, data_dir: Path) -> Iterator[tuple[dict[str, str], str]]:
    """The server's settings and a URL to read the database with; PostgreSQL: a fresh database."""
    if kind == "sqlite":
        yield {}, f"sqlite:///{data_dir / 'chatapp.db'}"
        return
    admin_url = os.environ.get("CHATAPP_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    name = f"chatapp_bench_restarts_{os.getpid()}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield {"CHATAPP_DATABASE_URL": url}, url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run(args: argparse.Namespace, kill: str, kind: str) -> dict:
    """One run: a fresh database, the tabs' run, then what the database holds."""
    with tempfile.TemporaryDirectory() as tmp, database(kind, Path(tmp) / "data") as (db_env, url):
        env = {
            "CHATAPP_DATA_DIR": str(Path(tmp) / "data"),
            "CHATAPP_LOG_LEVEL": "warning",
            "CHATAPP_MESSAGE_BURST": "0",  # the tabs send faster than people: no per-person rate limit
            **db_env,
        }
        server = ChatappProcess(env)
        try:
            server.start()
            result = asyncio.run(drive(server, args, kill))
        finally:
            server.stop()
        counts = saved_counts(url)
    sent = result.pop("sent")
    once = sum(1 for t in sent if counts.get(t) == 1)
    return {
        "kill": kill + (" (no outbox)" if args.no_outbox else ""),
        "database": kind,
        "tabs": args.tabs,
        "sent": len(sent),
        "once": once,
        "lost": sum(1 for t in sent if t not in counts),
        "twice": sum(1 for t in sent if counts.get(t, 0) > 1),
        **result,
    }


def print_rows(rows: list[dict]) -> None:
    print(
        "| server | database | tabs | sent | saved once | lost | saved twice+ | unconfirmed at the end | resends | "
        "page reloads | own messages seen live | back after | all confirmed after |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['kill']} | {r['database']} | {r['tabs']} | {r['sent']} | {r['once']} | {r['lost']} | {r['twice']} | "
            f"{r['unconfirmed']} | {r['resends']} | {r['reloads']} | {r['own_seen']} | {r['outage_s']:.1f} s | "
            f"{r['seconds']:.1f} s |"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tabs", type=int, default=100)
    parser.add_argument("--messages", type=int, default=100, help="per tab")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between one tab's messages")
    parser.add_argument("--kill", nargs="+", default=["sigkill", "sigterm"], choices=["sigkill", "sigterm", "none"])
    parser.add_argument("--database", nargs="+", default=["sqlite"], choices=["sqlite", "postgresql"])
    parser.add_argument(
        "--no-outbox", action="store_true", help="tabs send bare text once and keep nothing (pages before the outbox)"
    )
    parser.add_argument("--settle", type=float, default=180, help="seconds to wait for the last confirmations")
    args = parser.parse_args(argv)
    rows = [run(args, kill, kind) for kind in args.database for kill in args.kill]
    print_rows(rows)
    if not args.no_outbox and any(r["once"] != r["sent"] for r in rows):
        sys.exit("some sent messages are not in the database exactly once")


if __name__ == "__main__":
    main()

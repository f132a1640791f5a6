"""Nothing lost, nothing twice, with two real processes on one PostgreSQL: 10,000 messages from 100
concurrent senders (bots, half through each process), and room sockets on both listening; midway one
process is killed with SIGKILL and the other's listening connection is terminated on the server
(pg_terminate_backend). Every message a sender saw confirmed is in the database exactly once; a sender
whose process died sends again through the other with the same client message id and gets its first
message back; every receiver that stayed has, once caught up, exactly the database's messages in its
order."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from sqlalchemy import create_engine, text

from chatapp.app import Runtime, build_runtime, migrate_database
from chatapp.config import Settings
from tests.api.test_socket import socket_url
from tests.browser.conftest import RunningApp, start_app, stop_app
from tests.domain.helpers import sign_up

pytestmark = pytest.mark.postgres
SENDERS, EACH = 100, 100
RECEIVERS_PER_PROCESS = 2
SECRET = "reliability-secret-0123456789abcdefghijklmnopqr"


@pytest.fixture
def two(tmp_path: Path, postgres_database: str) -> Iterator[tuple[RunningApp, RunningApp, Runtime]]:
    env = {"CHATAPP_DATABASE_URL": postgres_database, "CHATAPP_SECRET_KEY": SECRET, "CHATAPP_MESSAGE_BURST": "0"}
    env["CHATAPP_SOCKET_MAX_BACKLOG"] = "100000"  # the receivers read as fast as they can, but 10,000 come fast
    apps = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        apps.append(start_app(tmp_path / name / "data", env))
    runtime = build_runtime(Settings(data_dir=tmp_path / "t", database_url=postgres_database, pubsub_url="memory://"))
    migrate_database(runtime)
    try:
        yield apps[0], apps[1], runtime
    finally:
        runtime.engine.dispose()
        for app in apps:
            if app.process.poll() is None:
                stop_app(app)


class Receiver:
    """A room socket that keeps every message id it is told of; rejoins with its last id when told to."""

    def __init__(self, app: RunningApp, token: str, room_id: int) -> None:
        self.app, self.token, self.room_id = app, token, room_id
        self.ids: set[int] = set()
        self.alive = True
        self.rejoins = 0
        self.ref = 0

    async def run(self, stop: asyncio.Event) -> None:
        try:
            async with websockets.connect(socket_url(self.app, token=self.token), max_queue=None) as ws:
                since = await self._join(ws, None)
                while not stop.is_set():
                    try:
                        raw = await asyncio.wait_for(ws.recv(), timeout=0.5)
                    except TimeoutError:
                        continue
                    frame = json.loads(raw)
                    if frame[3] == "message_posted":
                        self.ids.add(frame[4]["message"]["id"])
                    elif frame[3] == "phx_error":  # this process may have missed some: rejoin, catch up
                        self.rejoins += 1
                        since = await self._join(ws, since)
        except (websockets.ConnectionClosed, OSError):
            self.alive = False  # its process died: it did not stay

    async def _join(self, ws, since: str | None) -> str:
        self.ref += 1
        payload = {} if since is None else {"last_message_id": max(self.ids, default=0), "since": since}
        await ws.send(json.dumps([str(self.ref), str(self.ref), f"room:{self.room_id}", "phx_join", payload]))
        while True:
            frame = json.loads(await ws.recv())
            if frame[3] == "message_posted":
                self.ids.add(frame[4]["message"]["id"])
            elif frame[3] == "phx_reply" and frame[1] == str(self.ref):
                response = frame[4]["response"]
                missed = response.get("missed")
                if missed is not None and missed["reload"]:  # start again: read the whole history
                    await self.fetch_after(0)
                elif missed is not None:
                    self.ids.update(m["id"] for m in missed["new"])
                return response["server_time"]

    async def fetch_after(self, last: int) -> None:
        """Page through everything after `last` (a client told to reload reads the room again; one with
        a screen reads the newest page, and older ones as it scrolls up)."""
        async with httpx.AsyncClient(base_url=f"{self.app.base_url}/api/v1", timeout=30) as client:
            while True:
                page = await client.get(
                    f"/rooms/{self.room_id}/messages",
                    params={"after_id": last, "limit": 200},
                    headers={"Authorization": f"Bearer {self.token}"},
                )
                messages = page.json()["messages"]
                self.ids.update(m["id"] for m in messages)
                if not messages:
                    return
                last = messages[-1]["id"]


async def send_all(sender: int, token: str, room_id: int, homes: list[RunningApp], confirmed: dict) -> int:
    """Post EACH messages, each until it is confirmed (through the other process once the home one
    fails); how many times a message was sent again."""
    resent = 0
    home = homes[sender % 2]
    async with httpx.AsyncClient(timeout=10) as client:
        for n in range(EACH):
            body, client_id = f"s{sender}-m{n}", f"cid-{sender}-{n:04d}"
            while True:
                try:
                    answer = await client.post(
                        f"{home.base_url}/api/v1/rooms/{room_id}/messages",
                        json={"body": body, "client_message_id": client_id},
                        headers={"Authorization": f"Bearer {token}"},
                    )
                except httpx.HTTPError:
                    answer = None
                if answer is not None and answer.status_code == 201:
                    confirmed[client_id] = answer.json()["id"]
                    break
                resent += 1
                home = homes[1] if home is homes[0] else homes[0]  # the other process
                await asyncio.sleep(0.05)
    return resent


async def test_nothing_lost_nothing_twice_through_a_killed_process_and_a_killed_listener(two) -> None:
    a, b, runtime = two
    alice, _ = await sign_up(runtime, "alice")
    room = await runtime.services.rooms.create_room(alice, name="Firehose")
    tokens, s = [], runtime.services
    owners = [(await sign_up(runtime, f"owner{n}"))[0] for n in range(SENDERS // 20)]  # 20 bots each at most
    for n in range(SENDERS):
        owner = owners[n // 20]
        bot = await s.tokens.create_bot(owner, username=f"sender{n}", display_name=f"Sender {n}")
        await s.membership.add_bot(alice, room.id, bot.username)
        token = await s.tokens.create_token(owner, name="s", scopes=["read", "write"], bot_id=bot.id)
        tokens.append(token.value)
    reader = (await runtime.services.tokens.create_token(alice, name="r", scopes=["read"])).value
    receivers = [Receiver(app, reader, room.id) for app in (a, b) for _ in range(RECEIVERS_PER_PROCESS)]
    stop = asyncio.Event()
    listening = [asyncio.create_task(r.run(stop)) for r in receivers]
    await asyncio.sleep(1)  # every receiver joined
    confirmed: dict[str, int] = {}
    started = time.monotonic()
    sending = [asyncio.create_task(send_all(n, tokens[n], room.id, [a, b], confirmed)) for n in range(SENDERS)]
    while len(confirmed) < SENDERS * EACH // 2:
        await asyncio.sleep(0.05)
    a.process.send_signal(signal.SIGKILL)
    engine = create_engine(runtime.settings.resolved_database_url)
    with engine.connect() as conn:
        ended = conn.execute(
            text(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name = 'chatapp bus listener'"
            )
        ).scalar()
    engine.dispose()
    assert ended >= 1  # b's (a's went with its process, or goes now)
    resent = sum(await asyncio.gather(*sending))
    elapsed = time.monotonic() - started
    deadline = time.monotonic() + 30  # the last ones arrive live
    while any(r.alive and len(r.ids) < SENDERS * EACH for r in receivers) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    stop.set()
    await asyncio.gather(*listening)

    with runtime.engine.connect() as conn:
        rows = conn.execute(text("SELECT id, body FROM messages WHERE room_id = :r ORDER BY id"), {"r": room.id}).all()
    bodies = [body for _, body in rows]
    assert len(confirmed) == SENDERS * EACH
    assert len(bodies) == len(set(bodies)) == SENDERS * EACH  # every confirmed message, once
    assert sorted(confirmed.values()) == [message_id for message_id, _ in rows]
    stayed = [r for r in receivers if r.alive]
    assert len(stayed) == RECEIVERS_PER_PROCESS and all(r.app is b for r in stayed)
    for receiver in stayed:  # live, and through its rejoin when its process lost the listener
        assert sorted(receiver.ids) == [message_id for message_id, _ in rows]
        assert receiver.rejoins >= 1  # it was told to rejoin when its process lost the listener
    print(f"\n{SENDERS * EACH} messages in {elapsed:.1f} s through a kill and a lost listener; {resent} sent again")

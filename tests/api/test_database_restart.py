"""PostgreSQL restarted under load: a real `python -m chatapp` on a PostgreSQL server of its own (a
private cluster, so the suite's server is not touched) serves again within 5 s of the database's
return, without a restart of its own: posts succeed, /healthz says ok (the bus listens again), a room
socket told to rejoin catches up and hears new messages live, and every post it confirmed is saved
once."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from sqlalchemy import create_engine, text

from chatapp.app import build_runtime, migrate_database
from chatapp.config import Settings
from tests.api.test_socket import Client, socket_url, token_for
from tests.browser.conftest import _free_port, start_app, stop_app
from tests.conftest import REQUIRE_POSTGRES
from tests.domain.helpers import sign_up

pytestmark = pytest.mark.postgres
SERVES_WITHIN_S = 5.0  # the bound, from the database's return
SENDERS = 5


class PrivateCluster:
    """A PostgreSQL server of this test's own: initdb, start, stop (fast), start again."""

    def __init__(self, bin_dir: str, data: Path, port: int) -> None:
        self.bin_dir, self.data, self.port = bin_dir, data, port

    def _run(self, tool: str, *args: str) -> None:
        command = [os.path.join(self.bin_dir, tool), *args]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.data / "log"), "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"


def _skip_or_fail(reason: str) -> None:
    if REQUIRE_POSTGRES:
        pytest.fail(f"{reason} (CHATAPP_REQUIRE_POSTGRES=1)")
    pytest.skip(reason)


@pytest.fixture
def cluster() -> Iterator[PrivateCluster]:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        _skip_or_fail("no PostgreSQL server binaries (/usr/lib/postgresql/*/bin) for a private cluster")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        _skip_or_fail("running as root without runuser: cannot start PostgreSQL as the postgres user")
    data = Path(tempfile.mkdtemp(prefix="chatapp-pg-"))
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
    made = PrivateCluster(os.path.dirname(found[-1]), data, _free_port())
    try:
        made.init()
        made.start()
    except (subprocess.CalledProcessError, LookupError) as failed:
        shutil.rmtree(data, ignore_errors=True)
        _skip_or_fail(f"a private PostgreSQL cluster would not start: {failed}")
    try:
        yield made
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            made.stop()
        shutil.rmtree(data, ignore_errors=True)


async def _post_until_stopped(
    client: httpx.AsyncClient, room_id: int, sender: int, stop: asyncio.Event, confirmed: dict[str, int]
) -> None:
    """Post one message after another; a refused or failed one is sent again with its client id."""
    n = 0
    while not stop.is_set():
        client_id = f"restart-{sender}-{n:05d}"
        try:
            answer = await client.post(
                f"/rooms/{room_id}/messages", json={"body": client_id, "client_message_id": client_id}
            )
            if answer.status_code == 201:
                confirmed[client_id] = answer.json()["id"]
                n += 1

        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.05)


async def _first_success_after(api: httpx.AsyncClient, base_url: str, room_id: int, since: float) -> float:
    """Seconds from `since` until a post and /healthz both succeed."""
    deadline = since + 30
    while time.monotonic() < deadline:
        try:
            posted = await api.post(f"/rooms/{room_id}/messages", json={"body": "are you back?"})
            health = await api.get(f"{base_url}/healthz")
            if posted.status_code == 201 and health.status_code == 200 and health.json()["bus"] == "ok":
                return time.monotonic() - since
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("the app did not serve again within 30 s of the database's return")


async def test_the_app_serves_again_within_5_s_of_the_database_coming_back(cluster, tmp_path: Path) -> None:
    runtime = build_runtime(Settings(data_dir=tmp_path / "t", database_url=cluster.url, pubsub_url="memory://"))
    migrate_database(runtime)
    alice, _ = await sign_up(runtime, "alice")
    room = await runtime.services.rooms.create_room(alice, name="Ops")
    token = await token_for(runtime, alice, "read", "write")
    runtime.engine.dispose()
    (tmp_path / "app").mkdir()
    env = {"CHATAPP_DATABASE_URL": cluster.url, "CHATAPP_SECRET_KEY": "restart-secret-0123456789abcdefghijklmnopqrst"}
    env["CHATAPP_MESSAGE_BURST"] = "0"
    app = start_app(tmp_path / "app" / "data", env)
    headers = {"Authorization": f"Bearer {token}"}
    confirmed: dict[str, int] = {}
    stop = asyncio.Event()
    try:
        async with (
            httpx.AsyncClient(base_url=f"{app.base_url}/api/v1", headers=headers, timeout=10) as api,
            websockets.connect(socket_url(app, token=token)) as ws,
        ):
            socket = Client(ws)
            _, joined = await socket.join(room.id)
            load = [asyncio.create_task(_post_until_stopped(api, room.id, n, stop, confirmed)) for n in range(SENDERS)]
            await asyncio.sleep(2)
            before = len(confirmed)
            assert before > 0
            await asyncio.to_thread(cluster.stop)
            await asyncio.sleep(3)  # the app has no database meanwhile
            await asyncio.to_thread(cluster.start)
            back = time.monotonic()
            took = await _first_success_after(api, app.base_url, room.id, back)
            print(f"\nserved again {took:.2f} s after PostgreSQL came back")
            assert took < SERVES_WITHIN_S
            await asyncio.sleep(1)
            stop.set()
            await asyncio.gather(*load)
            assert len(confirmed) > before  # the senders went on

            await socket.wait_for("phx_error")  # the bus lost its listener: the channel is told to rejoin
            last = max(confirmed.values())
            _, rejoined = await socket.join(room.id, last_message_id=last, since=joined["response"]["server_time"])
            assert rejoined["status"] == "ok"
            live = await api.post(f"/rooms/{room.id}/messages", json={"body": "heard live again"})
            while True:
                frame = await socket.wait_for("message_posted")
                if frame[4]["message"]["id"] == live.json()["id"]:
                    break
        engine = create_engine(cluster.url)
        with engine.connect() as conn:
            bodies = conn.execute(text("SELECT body FROM messages WHERE room_id = :r"), {"r": room.id}).scalars().all()
        engine.dispose()
        saved = [b for b in bodies if b.startswith("restart-")]
        assert len(saved) == len(set(saved))  # nothing twice
        assert set(confirmed) <= set(saved)  # nothing confirmed lost
    finally:
        stop.set()
        stop_app(app)

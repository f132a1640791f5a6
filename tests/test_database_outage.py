"""The real server (`python -m chatapp` in a subprocess) while its database does not answer: every page
answers 503 "Database unavailable" with Retry-After and a page that reloads itself, never a 500, and the
real page is back once the database is.

PostgreSQL is cut for real: the app reaches it through a TCP proxy written here, which the test cuts
(every connection closed, new ones refused, as when the server is stopped), stalls (connections held
open, nothing answered, as in a network partition) and restores. SQLite cannot be cut that way: the
tests run as root, whom chmod does not stop, and an open SQLite connection goes on reading a file that
was moved or unlinked. So the SQLite outage takes away the tables the pages and the health check read
(the real engine then fails every such query with OperationalError) and puts them back.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from chatapp.app import build_runtime, migrate_database
from chatapp.pages.session import SESSION_COOKIE
from tests.browser.conftest import RunningApp, start_app, stop_app
from tests.conftest import make_settings
from tests.domain.helpers import PASSWORD, sign_up

ROOM_NAME = "Incident room"
RECOVERY_DEADLINE_S = 60.0  # returns as soon as the page is back: generous for a loaded machine
SQLITE_CUT_TABLES = ("sessions", "alembic_version")  # who is visiting, and the health check's schema read


@dataclass(frozen=True)
class Seeded:
    """A migrated database with one user (signed in: `token`) who owns one room."""

    token: str
    room_id: int


def seed(tmp_path: Path, database_url: str) -> Seeded:
    """Migrate the database and create alice and her room through the real domain services."""
    runtime = build_runtime(make_settings(tmp_path, database_url))
    try:
        migrate_database(runtime)

        async def create() -> Seeded:
            alice, token = await sign_up(runtime, "alice")
            room = await runtime.services.rooms.create_room(alice, name=ROOM_NAME)
            await runtime.tx.wait_until_idle()
            return Seeded(token, room.id)

        return asyncio.run(create())
    finally:
        runtime.engine.dispose()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator:
    """Start the real app on a database URL; stopped afterwards."""
    started: list[RunningApp] = []

    def start(database_url: str) -> RunningApp:
        started.append(start_app(tmp_path / "data", {"CHATAPP_DATABASE_URL": database_url}))
        return started[-1]

    yield start
    for app in started:
        stop_app(app)


def browser(app: RunningApp, seeded: Seeded) -> httpx.Client:
    """An HTTP client signed in as alice."""
    return httpx.Client(base_url=app.base_url, cookies={SESSION_COOKIE: seeded.token}, timeout=30)


def assert_database_unavailable_page(response: httpx.Response, *, reloads: str) -> None:
    """503, Retry-After, the app's security headers and a small page that says it retries by itself."""
    assert response.status_code == 503, (response.status_code, response.text[:2000])
    assert int(response.headers["retry-after"]) > 0
    assert response.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    page = response.text
    assert re.search(r"<h1>\s*Database unavailable\s*</h1>", page), page
    assert "retries by itself" in page
    assert re.search(rf'<meta http-equiv="refresh" content="\d+{re.escape(reloads)}">', page), page
    assert '<html lang="en">' in page
    assert "<script" not in page
    assert "Traceback" not in page and "OperationalError" not in page


def assert_every_page_says_database_unavailable(app: RunningApp, seeded: Seeded) -> None:
    with browser(app, seeded) as client:
        for path in ("/", f"/rooms/{seeded.room_id}", "/sign-in"):
            assert_database_unavailable_page(client.get(path), reloads="")
        # A form posted meanwhile: the page reloads the form it came from (a reload would re-POST nothing).
        posted = client.post(
            "/auth/sign-in",
            data={"username": "alice", "password": PASSWORD},
            headers={"Origin": app.base_url, "Referer": f"{app.base_url}/sign-in?next=/rooms"},
        )
        assert_database_unavailable_page(posted, reloads="; url=/sign-in?next=/rooms")
        health = client.get("/healthz")
        assert health.status_code == 503 and health.json()["database"] == "unreachable"


def assert_the_room_comes_back(app: RunningApp, seeded: Seeded) -> None:
    """The room page, requested as the 503 page's refresh would, is the real room again soon."""
    deadline = time.monotonic() + RECOVERY_DEADLINE_S
    with browser(app, seeded) as client:
        while True:
            response = client.get(f"/rooms/{seeded.room_id}")
            if response.status_code == 200 or time.monotonic() > deadline:
                break
            assert response.status_code == 503, (response.status_code, response.text[:2000])
            time.sleep(0.5)
        assert response.status_code == 200, response.text[:2000]
        assert f"<title>{ROOM_NAME} · chatapp</title>" in response.text
        # healthy once the bus listens again too (its own connection reconnects with backoff)
        while (health := client.get("/healthz")).status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert health.status_code == 200, health.text


def assert_the_room_opens(app: RunningApp, seeded: Seeded) -> None:
    with browser(app, seeded) as client:
        response = client.get(f"/rooms/{seeded.room_id}")
    assert response.status_code == 200, response.text[:2000]
    assert f"<title>{ROOM_NAME} · chatapp</title>" in response.text


# --- SQLite -------------------------------------------------------------------------------------------


def rename_tables(database: Path, renames: list[tuple[str, str]]) -> None:
    """ALTER TABLE ... RENAME in one transaction, from a connection of the test's own."""
    connection = sqlite3.connect(database, timeout=30, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        for old, new in renames:
            connection.execute(f'ALTER TABLE "{old}" RENAME TO "{new}"')
        connection.execute("COMMIT")
    finally:
        connection.close()


def test_sqlite_pages_say_database_unavailable_then_come_back(tmp_path: Path, serve) -> None:
    database = tmp_path / "data" / "chatapp.db"
    url = f"sqlite:///{database}"
    seeded = seed(tmp_path, url)
    app = serve(url)
    assert_the_room_opens(app, seeded)

    rename_tables(database, [(table, f"{table}_cut") for table in SQLITE_CUT_TABLES])
    assert_every_page_says_database_unavailable(app, seeded)

    rename_tables(database, [(f"{table}_cut", table) for table in SQLITE_CUT_TABLES])
    assert_the_room_comes_back(app, seeded)


# --- PostgreSQL, through a proxy the test cuts -----------------------------------------------------------


class CuttableProxy:
    """A TCP proxy from 127.0.0.1:<port> to PostgreSQL, run in threads.

    `cut()`: every connection is closed and new ones are refused (nothing listens on the port).
    `stall()`: connections are accepted and held, but no byte goes either way (a network partition).
    `restore()`: connections are forwarded again, on the same port.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._stalled = False
        self._listener: socket.socket | None = None
        self._listen(0)
        self.port = self._listener.getsockname()[1]

    def cut(self) -> None:
        """Refuse new connections, close every open one."""
        self._stop_listening()
        self._close_connections()

    def stall(self) -> None:
        """Hold new connections without answering; open ones hear nothing more."""
        with self._lock:
            self._stalled = True

    def restore(self) -> None:
        """Forward again (the stalled connections are closed, as a partition's end resets them)."""
        with self._lock:
            self._stalled = False
        self._close_connections()
        if self._listener is None:
            self._listen(self.port)

    def close(self) -> None:
        self.cut()

    def _listen(self, port: int) -> None:
        listener = socket.create_server(("127.0.0.1", port))  # SO_REUSEADDR: the same port again after a cut
        listener.settimeout(0.1)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _stop_listening(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            with self._lock:
                self._sockets.add(client)
                if self._stalled:
                    continue
            self._connect(client)

    def _connect(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        with self._lock:
            self._sockets.add(upstream)
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                while self._stalled and source in self._sockets:  # hold the bytes: nothing answers
                    time.sleep(0.05)
                sink.sendall(data)
        except OSError:
            return  # closed by cut() or restore(), or by either end
        finally:
            self._close(source)
            self._close(sink)

    def _close(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def _close_connections(self) -> None:
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            self._close(sock)


@pytest.fixture
def proxied_postgres(postgres_database: str) -> Iterator[tuple[str, CuttableProxy]]:
    """A fresh PostgreSQL database and its URL through a cuttable proxy."""
    url = make_url(postgres_database)
    proxy = CuttableProxy((url.host or "127.0.0.1", url.port or 5432))
    try:
        yield url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False), proxy
    finally:
        proxy.close()


@pytest.mark.postgres
def test_postgres_pages_say_database_unavailable_while_it_is_cut_then_come_back(
    tmp_path: Path, serve, proxied_postgres
) -> None:
    url, proxy = proxied_postgres
    seeded = seed(tmp_path, url)
    app = serve(url)
    assert_the_room_opens(app, seeded)

    proxy.cut()
    assert_every_page_says_database_unavailable(app, seeded)

    proxy.restore()
    assert_the_room_comes_back(app, seeded)


@pytest.mark.postgres
def test_postgres_room_says_database_unavailable_while_the_network_stalls(
    tmp_path: Path, serve, proxied_postgres
) -> None:
    """No error at all, only silence: the page's build outlives NiceGUI's response timeout (a 500 before)."""
    url, proxy = proxied_postgres
    seeded = seed(tmp_path, url)
    app = serve(url)
    assert_the_room_opens(app, seeded)

    proxy.stall()
    with browser(app, seeded) as client:
        assert_database_unavailable_page(client.get(f"/rooms/{seeded.room_id}"), reloads="")

    proxy.restore()
    assert_the_room_comes_back(app, seeded)

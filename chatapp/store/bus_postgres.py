"""The bus over PostgreSQL LISTEN/NOTIFY (store/bus.py does the rest).

- Listening is one dedicated autocommit connection per process (psycopg 3, never from the engine's
  pool: a pooled connection would carry LISTEN into other work, and a transaction-mode pooler drops
  it), on one channel; events are routed to topics in the process. Every LISTEN_CHECK_S without a
  notification it runs `SELECT 1`, so a connection that died quietly is noticed within seconds, not
  at the next TCP keepalive.
- Sending is a second dedicated connection: `pg_notify` outside any data transaction, after the
  commit that made the news (NOTIFY in a transaction is delivered at its commit; here every message
  is its own small commit, which takes PostgreSQL's notify lock briefly: store/bus.py packs events).
- A NOTIFY payload is at most 8000 bytes: MAX_PAYLOAD leaves room; an event bigger than that is kept
  in the bus_kept table for KEPT_FOR, and the message carries its id.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import psycopg
from psycopg.conninfo import make_conninfo
from sqlalchemy.engine import make_url

from chatapp.store.bus import CHANNEL

log = logging.getLogger(__name__)

MAX_PAYLOAD = 7_900  # bytes: PostgreSQL refuses a NOTIFY payload of 8000 or more
LISTEN_CHECK_S = 5.0
ANSWER_WITHIN_S = 5.0  # a query of the bus's own unanswered this long: the connection is taken for dead
KEPT_FOR = timedelta(minutes=10)
CONNECT_TIMEOUT_S = 5
# Keepalives find a peer that vanished (a network cut) where nothing else would.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}


def libpq_url(url: str) -> str:
    """The database URL as libpq reads it (SQLAlchemy's `postgresql+psycopg://` without the driver)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresTransport:
    """LISTEN/NOTIFY on one channel of the database at `url`."""

    name = "postgresql"
    max_payload = MAX_PAYLOAD
    hard_limit = True

    def __init__(self, url: str, channel: str = CHANNEL) -> None:
        self._conninfo = make_conninfo(libpq_url(url), connect_timeout=CONNECT_TIMEOUT_S, **KEEPALIVES)
        self._channel = channel
        self._sender: psycopg.AsyncConnection | None = None
        self._sender_lock = asyncio.Lock()
        self._listener: psycopg.AsyncConnection | None = None

    async def _connect(self, role: str) -> psycopg.AsyncConnection:
        # pg_stat_activity shows which connection is which: "chatapp bus listener" / "chatapp bus sender"
        name = f"chatapp bus {role}"
        return await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True, application_name=name)

    async def listen(self, on_listening: Callable[[], None]) -> AsyncIterator[str]:
        """The channel's payloads, from a new connection, until it fails."""
        conn = self._listener = await self._connect("listener")
        try:
            await conn.execute(f'LISTEN "{self._channel}"')
            on_listening()
            while True:
                async for notification in conn.notifies(timeout=LISTEN_CHECK_S):
                    yield notification.payload
                # still there? (raises if not; a stalled network answers nothing, hence the bound)
                await asyncio.wait_for(conn.execute("SELECT 1"), ANSWER_WITHIN_S)
        finally:
            self._listener = None
            await conn.close()

    async def _run(self, query: str, params: tuple) -> tuple | None:
        async with self._sender_lock:
            if self._sender is None or self._sender.closed:
                self._sender = await self._connect("sender")
            try:
                return await asyncio.wait_for(self._query(self._sender, query, params), ANSWER_WITHIN_S)
            except (psycopg.OperationalError, TimeoutError):
                await self._sender.close()
                self._sender = None
                raise

    @staticmethod
    async def _query(conn: psycopg.AsyncConnection, query: str, params: tuple) -> tuple | None:
        cursor = await conn.execute(query, params)
        return await cursor.fetchone() if cursor.description else None

    async def send(self, payload: str) -> None:
        """NOTIFY the channel (its own tiny transaction)."""
        await self._run("SELECT pg_notify(%s, %s)", (self._channel, payload))

    async def keep(self, payload: str) -> str:
        """Keep a payload too big for a NOTIFY (and let go of those older than KEPT_FOR)."""
        await self._run("DELETE FROM bus_kept WHERE created_at < now() - %s", (KEPT_FOR,))
        row = await self._run("INSERT INTO bus_kept (payload, created_at) VALUES (%s, now()) RETURNING id", (payload,))
        assert row is not None
        return str(row[0])

    async def fetch(self, ref: str) -> str | None:
        """A kept payload by its id (None if it is gone)."""
        row = await self._run("SELECT payload FROM bus_kept WHERE id = %s", (int(ref),))
        return row[0] if row else None

    async def close(self) -> None:
        """Close the sending connection (the listening one closes with its task)."""
        async with self._sender_lock:
            if self._sender is not None:
                await self._sender.close()
                self._sender = None

    def listener_pid(self) -> int | None:
        """The listening connection's backend pid, while it is connected (what pg_stat_activity shows)."""
        return self._listener.info.backend_pid if self._listener is not None else None

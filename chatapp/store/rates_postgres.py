"""Rate limits shared by every process, in PostgreSQL (domain/limits.py's RateStore).

Each take is one statement: an upsert of the key's bucket that refills it by the time since its last
take (the database's clock, the same for every process) and takes a token only if one is there; the row
lock of ON CONFLICT makes simultaneous takes of one key wait for each other, so a burst cannot pass
together. A row whose bucket is full again says no more than no row: such rows are deleted now and
then. The store has its own autocommit connection (psycopg 3, async: no thread hop); if the database
cannot be asked, the attempt is let through (the work it limits needs the database anyway) and the
log says so.
"""

from __future__ import annotations

import asyncio
import logging

import psycopg

from chatapp.domain.limits import Rate
from chatapp.store.bus_postgres import libpq_url

log = logging.getLogger(__name__)

ANSWER_WITHIN_S = 5.0
PRUNE_EVERY = 500  # takes between deletions of full buckets

# The statements are built from this constant only (no input: every value is a bound parameter).
_REFILLED = "LEAST(%(burst)s, b.tokens + EXTRACT(EPOCH FROM now() - b.at) * %(rate)s)"
_TAKE = f"""
INSERT INTO rate_buckets AS b (key, tokens, at, full_at)
VALUES (%(key)s, %(burst)s - 1, now(), now() + make_interval(secs => 1 / %(rate)s))
ON CONFLICT (key) DO UPDATE SET
    tokens = {_REFILLED} - 1,
    at = now(),
    full_at = now() + make_interval(secs => (%(burst)s - ({_REFILLED} - 1)) / %(rate)s)
WHERE {_REFILLED} >= 1
RETURNING b.tokens
"""  # noqa: S608
_TOKENS = f"SELECT {_REFILLED} FROM rate_buckets AS b WHERE key = %(key)s"  # noqa: S608
_GIVE_BACK = f"""
UPDATE rate_buckets AS b SET
    tokens = LEAST(%(burst)s, {_REFILLED} + 1),
    at = now(),
    full_at = now() + make_interval(secs => GREATEST(0, %(burst)s - LEAST(%(burst)s, {_REFILLED} + 1)) / %(rate)s)
WHERE key = %(key)s
"""  # noqa: S608


class PostgresRateStore:
    """The token buckets in the rate_buckets table of the database at `url`."""

    def __init__(self, url: str) -> None:
        self._url = libpq_url(url)
        self._conn: psycopg.AsyncConnection | None = None
        self._lock = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._takes = 0

    async def take(self, key: str, rate: Rate) -> float:
        """Take one attempt: 0.0, else the seconds until one is back."""
        params = {"key": key, "burst": float(rate.burst), "rate": rate.per_second}
        self._takes += 1
        if self._takes % PRUNE_EVERY == 0:
            await self._run("DELETE FROM rate_buckets WHERE full_at < now()", {})
        taken = await self._run(_TAKE, params)
        if taken is None or taken:
            return 0.0  # taken (or the database could not be asked: let it through)
        return _wait(await self._run(_TOKENS, params), rate)

    async def give_back(self, key: str, rate: Rate) -> None:
        """Return one attempt."""
        await self._run(_GIVE_BACK, {"key": key, "burst": float(rate.burst), "rate": rate.per_second})

    async def forget(self, key: str) -> None:
        """Forget the key's attempts."""
        await self._run("DELETE FROM rate_buckets WHERE key = %(key)s", {"key": key})

    async def wait_needed(self, key: str, rate: Rate) -> float:
        """Seconds until an attempt would be allowed."""
        return _wait(await self._run(_TOKENS, {"key": key, "burst": float(rate.burst), "rate": rate.per_second}), rate)

    async def close(self) -> None:
        """Close the store's connection."""
        async with self._lock:
            if self._conn is not None:
                await self._conn.close()
                self._conn = None

    async def _run(self, query: str, params: dict) -> list[tuple] | None:
        """The statement's rows (a list, maybe empty); None if the database could not be asked."""
        if (loop := asyncio.get_running_loop()) is not self._loop:  # a CLI or a test may run several loops
            self._loop, self._lock, self._conn = loop, asyncio.Lock(), None
        async with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = await psycopg.AsyncConnection.connect(
                        self._url, autocommit=True, application_name="chatapp rates", connect_timeout=5
                    )
                return await asyncio.wait_for(_rows(self._conn, query, params), ANSWER_WITHIN_S)
            except (psycopg.OperationalError, TimeoutError, OSError):
                log.warning("rate limits: the database could not be asked; letting the attempt through", exc_info=True)
                if self._conn is not None:
                    await self._conn.close()
                self._conn = None
                return None


async def _rows(conn: psycopg.AsyncConnection, query: str, params: dict) -> list[tuple]:
    cursor = await conn.execute(query, params)
    return await cursor.fetchall() if cursor.description else []


def _wait(rows: list[tuple] | None, rate: Rate) -> float:
    if not rows:
        return 0.0
    tokens = float(rows[0][0])
    return 0.0 if tokens >= 1 else (1 - tokens) / rate.per_second

"""SQLite's group-commit writer: every caller hears of its own write, whatever happens to the others."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from chatapp.store.db import SQLITE_BUSY_TIMEOUT_MS, SqlTransactor, WriteNotSaved, make_engine
from tests.timing import LIVENESS_S

BUSY_TIMEOUT_S = SQLITE_BUSY_TIMEOUT_MS / 1000


@pytest.fixture
def tx(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
    yield SqlTransactor(engine)
    engine.dispose()


class Hold:
    """Keeps a write inside the writer thread until the test lets it go: what is queued meanwhile waits."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.released = threading.Event()

    def __call__(self) -> None:
        self.entered.set()
        assert self.released.wait(LIVENESS_S), "the test never let the held write go"

    async def until_entered(self) -> None:
        assert await asyncio.to_thread(self.entered.wait, LIVENESS_S), "the held write never reached the writer"


def insert(value: str, *, hold: Hold | None = None, fail: bool = False):
    def work(uow):
        if hold is not None:
            hold()
        uow.session.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": value})
        if fail:
            raise ValueError(f"{value} refused")
        return value

    return work


def saved(tx: SqlTransactor) -> list[str]:
    with tx.engine.connect() as conn:
        return [row[0] for row in conn.exec_driver_sql("SELECT v FROM t ORDER BY id")]


async def test_a_batch_commits_together_and_a_failing_write_is_undone_alone(tx):
    hold = Hold()
    first = asyncio.create_task(tx.run(insert("first", hold=hold), write=True))  # keeps the writer busy
    await hold.until_entered()
    queued = [asyncio.create_task(tx.run(insert(v, fail=v == "bad"), write=True)) for v in ("a", "bad", "b")]
    await asyncio.sleep(0)  # queued behind the held write
    hold.released.set()
    assert await first == "first"
    results = await asyncio.gather(*queued, return_exceptions=True)
    assert results[0] == "a" and results[2] == "b"
    assert isinstance(results[1], ValueError)
    assert saved(tx) == ["first", "a", "b"]


async def test_a_cancelled_caller_does_not_stop_the_writer(tx):
    hold = Hold()
    first = asyncio.create_task(tx.run(insert("first", hold=hold), write=True))
    await hold.until_entered()
    cancelled = asyncio.create_task(tx.run(insert("cancelled"), write=True))
    after = asyncio.create_task(tx.run(insert("after"), write=True))
    await asyncio.sleep(0)  # both queued behind the held write
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    hold.released.set()
    assert await first == "first"
    assert await asyncio.wait_for(after, LIVENESS_S) == "after"
    assert await asyncio.wait_for(tx.run(insert("later"), write=True), LIVENESS_S) == "later"
    assert saved(tx) == ["first", "after", "later"]


async def test_waiting_until_idle_returns_once_every_queued_write_is_committed(tx):
    await tx.wait_until_idle()  # nothing queued: at once
    hold = Hold()
    busy = asyncio.create_task(tx.run(insert("first", hold=hold), write=True))
    await hold.until_entered()
    queued = [asyncio.create_task(tx.run(insert(f"w{i}"), write=True)) for i in range(50)]
    await asyncio.sleep(0)
    idle = asyncio.create_task(tx.wait_until_idle())
    await asyncio.sleep(0.05)
    assert saved(tx) == [] and not idle.done()  # still in the writer's queue
    hold.released.set()
    await asyncio.wait_for(idle, LIVENESS_S)
    assert saved(tx) == ["first", *(f"w{i}" for i in range(50))]
    await asyncio.gather(busy, *queued)


async def test_when_the_lock_cannot_be_had_the_batch_fails_at_once(tx):
    other = sqlite3.connect(tx.engine.url.database, isolation_level=None)  # another writer (a CLI, a backup)
    other.execute("BEGIN IMMEDIATE")
    try:
        first = asyncio.create_task(tx.run(insert("first"), write=True))
        await asyncio.sleep(0.05)
        queued = [asyncio.create_task(tx.run(insert(v), write=True)) for v in ("a", "b", "c")]
        started = time.monotonic()
        results = await asyncio.gather(first, *queued, return_exceptions=True)
        # Each batch (two here, one if "first" had not reached the writer yet) waits out the busy timeout
        # once, not once per write (four): the bound lies halfway, so a loaded machine's delays fit in it.
        assert time.monotonic() - started < 3 * BUSY_TIMEOUT_S
        assert all(isinstance(r, Exception) for r in results)
        assert isinstance(results[1], WriteNotSaved) and results[1] is not results[2]
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert await tx.run(insert("works again"), write=True) == "works again"

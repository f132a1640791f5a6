"""SQLite's group-commit writer: every caller hears of its own write, whatever happens to the others."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from chatapp.store.db import SqlTransactor, WriteNotSaved, make_engine


@pytest.fixture
def tx(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
    yield SqlTransactor(engine)
    engine.dispose()


def insert(value: str, *, pause: float = 0.0, fail: bool = False):
    def work(uow):
        time.sleep(pause)
        uow.session.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": value})
        if fail:
            raise ValueError(f"{value} refused")
        return value

    return work


def saved(tx: SqlTransactor) -> list[str]:
    with tx.engine.connect() as conn:
        return [row[0] for row in conn.exec_driver_sql("SELECT v FROM t ORDER BY id")]


async def test_a_batch_commits_together_and_a_failing_write_is_undone_alone(tx):
    first = asyncio.create_task(tx.run(insert("first", pause=0.2), write=True))  # keeps the writer busy
    await asyncio.sleep(0.05)
    queued = [asyncio.create_task(tx.run(insert(v, fail=v == "bad"), write=True)) for v in ("a", "bad", "b")]
    assert await first == "first"
    results = await asyncio.gather(*queued, return_exceptions=True)
    assert results[0] == "a" and results[2] == "b"
    assert isinstance(results[1], ValueError)
    assert saved(tx) == ["first", "a", "b"]


async def test_a_cancelled_caller_does_not_stop_the_writer(tx):
    first = asyncio.create_task(tx.run(insert("first", pause=0.3), write=True))
    await asyncio.sleep(0.05)
    cancelled = asyncio.create_task(tx.run(insert("cancelled"), write=True))
    after = asyncio.create_task(tx.run(insert("after"), write=True))
    await asyncio.sleep(0.05)
    cancelled.cancel()
    assert await first == "first"
    assert await asyncio.wait_for(after, 3) == "after"
    assert await asyncio.wait_for(tx.run(insert("later"), write=True), 3) == "later"
    assert saved(tx) == ["first", "after", "later"]


async def test_waiting_until_idle_returns_once_every_queued_write_is_committed(tx):
    await tx.wait_until_idle()  # nothing queued: at once
    busy = asyncio.create_task(tx.run(insert("first", pause=0.3), write=True))
    await asyncio.sleep(0.05)
    queued = [asyncio.create_task(tx.run(insert(f"w{i}"), write=True)) for i in range(50)]
    await asyncio.sleep(0)
    assert saved(tx) == []  # still in the writer's queue
    await asyncio.wait_for(tx.wait_until_idle(), 5)
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
        # each batch waits out the busy timeout once, not once per write
        assert time.monotonic() - started < 2 * 5 + 3
        assert all(isinstance(r, Exception) for r in results)
        assert isinstance(results[1], WriteNotSaved) and results[1] is not results[2]
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert await tx.run(insert("works again"), write=True) == "works again"

"""Engines and the transactor: sync SQLModel sessions, run in worker threads, never on the loop."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from chatapp.domain.ports import UnitOfWork
from chatapp.store.repositories import SqlUnitOfWork

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 5000
PG_CONNECT_TIMEOUT_S = 5


def is_sqlite(url: str) -> bool:
    """True for sqlite URLs."""
    return url.startswith("sqlite")


def make_engine(url: str) -> Engine:
    """An engine tuned for a web app: SQLite in WAL mode with BEGIN IMMEDIATE for writes."""
    if is_sqlite(url):
        engine = create_engine(url, connect_args={"check_same_thread": False})
        _tune_sqlite(engine)
        return engine
    return create_engine(
        url,
        pool_size=10,
        max_overflow=20,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S},
    )


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_conn.cursor()
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=NORMAL",
            f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
            "PRAGMA foreign_keys=ON",
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:
        # A deferred transaction that reads and then writes fails at once under WAL when another
        # writer got in between; writers take the lock up front instead.
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class SqlTransactor:
    """Implements the domain's Transactor port on a SQLAlchemy engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        sqlite = engine.dialect.name == "sqlite"
        self._write_engine = engine.execution_options(sqlite_immediate=True) if sqlite else engine
        # SQLite has one writer at a time. Writers racing for the lock in several threads wait in
        # SQLite's busy handler, which sleeps with back-off: measured here, 20 concurrent posters
        # got 83 messages/s that way. One writer thread queues them instead, with no sleeping.
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer") if sqlite else None

    async def run(self, work: Callable[[UnitOfWork], T], *, write: bool = False) -> T:
        """Run work(uow) in a worker thread in one transaction; commit if write."""
        if write and self._writer is not None:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._writer, functools.partial(self.run_sync, work, write=True))
        return await asyncio.to_thread(self.run_sync, work, write=write)

    def run_sync(self, work: Callable[[UnitOfWork], T], *, write: bool = False) -> T:
        """The same, on the calling thread (CLI, migrations, benchmarks' setup)."""
        with Session(self._write_engine if write else self.engine, expire_on_commit=False) as session:
            result = work(SqlUnitOfWork(session))
            if write:
                session.commit()
            return result

    def ping(self) -> None:
        """Raise if the database cannot answer, or is not chatapp's migrated schema."""
        with self.engine.connect() as conn:
            if conn.execute(text("SELECT version_num FROM alembic_version")).scalar() is None:
                raise RuntimeError("database has no schema revision")

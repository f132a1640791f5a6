"""Engines and the transactor: sync SQLModel sessions, run in worker threads, never on the loop."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy import event, text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, create_engine

from chatapp.domain.ports import UnitOfWork
from chatapp.store.repositories import SqlUnitOfWork

T = TypeVar("T")
log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 5000
PG_CONNECT_TIMEOUT_S = 5
MAX_WRITE_BATCH = 64  # write transactions committed together, at most


def is_sqlite(url: str) -> bool:
    """True for sqlite URLs."""
    return url.startswith("sqlite")


SQLITE_FILE_MODE = 0o600  # password hashes and every message: the owner's alone
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def make_sqlite_file_private(url: str) -> None:
    """Create the SQLite file 0600 before SQLite does, and take group and other access from existing ones.

    SQLite creates a database 0644 under the usual umask (022), and its -wal and -shm files copy the
    database file's mode, so a file made 0600 here keeps them 0600 too. A file (or side file) left
    readable by earlier versions is narrowed to its owner's bits. In-memory and `file:` URI databases,
    and a directory that does not exist (SQLite will say so), are left alone.
    """
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    if not os.path.isdir(os.path.dirname(os.path.abspath(database))):
        return
    os.close(os.open(database, os.O_RDONLY | os.O_CREAT, SQLITE_FILE_MODE))  # no-op on an existing file
    for path in (database, *(database + suffix for suffix in SQLITE_SIDE_FILES)):
        _narrow_to_owner(path)


def _narrow_to_owner(path: str) -> None:
    """chmod go-rwx, if the file exists and is not already private (a file we may not chmod: a warning)."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        if mode & 0o077:
            os.chmod(path, mode & 0o700)
            log.warning("%s was readable by others (mode %o); it is now %o", path, mode, mode & 0o700)
    except FileNotFoundError:
        return
    except PermissionError:
        log.warning("%s is readable by others and could not be made private: chmod 600 it", path)


def make_engine(url: str) -> Engine:
    """An engine tuned for a web app: SQLite in WAL mode with BEGIN IMMEDIATE for writes."""
    # hide_parameters: a failed statement's error (and so the log) names no parameter; they are
    # message bodies, names and token hashes (a NUL in an AI reply once put the whole reply there).
    if is_sqlite(url):
        engine = create_engine(url, connect_args={"check_same_thread": False}, hide_parameters=True)
        _tune_sqlite(engine)
        return engine
    return create_engine(
        url,
        pool_size=10,
        max_overflow=20,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S},
        hide_parameters=True,
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


class GroupCommitWriter:
    """SQLite's one writer: write transactions that arrive together are committed together.

    SQLite takes one writer at a time. Writers racing for its lock from several threads wait in its
    busy handler, which sleeps with back-off (measured: 20 concurrent posters got 83 messages/s).
    Here one thread runs every write; whatever queued up while it was busy runs as one batch, each
    unit of work inside its own SAVEPOINT (a failing one is rolled back alone and gets its own
    error), then one COMMIT for all. Callers hear of their result only after that commit, so
    "committed, then published" still holds.
    """

    def __init__(self, engine: Engine, *, max_batch: int = MAX_WRITE_BATCH) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._pending: list[tuple[Callable[[UnitOfWork], object], Future]] = []
        self._lock = threading.Lock()
        self._draining = False
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")

    async def run(self, work: Callable[[UnitOfWork], T]) -> T:
        """Queue work(uow) for the writer thread; returns its result once committed."""
        future: Future = Future()
        with self._lock:
            self._pending.append((work, future))
            if not self._draining:
                self._draining = True
                self._thread.submit(self._drain)
        return await asyncio.wrap_future(future)

    async def wait_until_idle(self) -> None:
        """Return once every write queued so far is committed (or failed): a server that stops on
        SIGTERM commits what its writer holds before it exits."""
        while True:
            with self._lock:
                if not self._pending and not self._draining:
                    return
            await asyncio.sleep(0.005)

    def _drain(self) -> None:
        try:
            while True:
                with self._lock:
                    batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
                    if not batch:
                        return
                # A caller that was cancelled meanwhile (its task was) is skipped, not run.
                self._commit([(work, future) for work, future in batch if future.set_running_or_notify_cancel()])
        finally:
            with self._lock:
                self._draining = False
                if self._pending:  # queued while this drain was failing or finishing: start another
                    self._draining = True
                    self._thread.submit(self._drain)

    def _commit(self, batch: list[tuple[Callable[[UnitOfWork], object], Future]]) -> None:
        """Run the batch in one transaction and resolve every caller's future; never raises."""
        if not batch:
            return
        outcomes: dict[Future, tuple[object, BaseException | None]] = {}
        try:
            with Session(self._engine, expire_on_commit=False) as session:
                session.connection()  # BEGIN IMMEDIATE now: if the lock cannot be had, the batch fails at once
                uow = SqlUnitOfWork(session)
                for work, future in batch:
                    outcomes[future] = _run_in_savepoint(session, uow, work, alone=len(batch) == 1)
                session.commit()
        except BaseException as exc:  # the transaction failed as a whole: nothing of the batch was saved
            for _, future in batch:
                own = outcomes.get(future, (None, None))[1]
                outcomes[future] = (None, own or _not_saved(exc))
        for _, future in batch:
            result, error = outcomes[future]
            if future.done():
                continue
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)


class WriteNotSaved(RuntimeError):
    """The transaction that held this write failed (each caller gets its own instance)."""


def _not_saved(cause: BaseException) -> WriteNotSaved:
    error = WriteNotSaved(f"the database did not save this change: {type(cause).__name__}: {cause}")
    error.__cause__ = cause
    return error


def _run_in_savepoint(session: Session, uow: UnitOfWork, work: Callable[[UnitOfWork], T], *, alone: bool):
    """(result, None) or (None, error); the work's changes are undone when it fails."""
    if alone:  # no other work shares the transaction: a failure rolls the whole session back
        try:
            return work(uow), None
        except Exception as exc:
            session.rollback()
            return None, exc
    try:
        with session.begin_nested():
            return work(uow), None
    except Exception as exc:
        return None, exc


class SqlTransactor:
    """Implements the domain's Transactor port on a SQLAlchemy engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        sqlite = engine.dialect.name == "sqlite"
        self._write_engine = engine.execution_options(sqlite_immediate=True) if sqlite else engine
        self._writer = GroupCommitWriter(self._write_engine) if sqlite else None
        # PostgreSQL reads skip BEGIN and ROLLBACK, two of the four round trips of a history page
        # (bench/history.py). Each statement still sees only committed data; reads here either make one
        # statement or tolerate a commit landing between two (a page and the access check before it).
        self._read_engine = engine if sqlite else engine.execution_options(isolation_level="AUTOCOMMIT")

    async def run(self, work: Callable[[UnitOfWork], T], *, write: bool = False) -> T:
        """Run work(uow) in a worker thread in one transaction; commit if write."""
        if write and self._writer is not None:
            return await self._writer.run(work)
        return await asyncio.to_thread(self.run_sync, work, write=write)

    def run_sync(self, work: Callable[[UnitOfWork], T], *, write: bool = False) -> T:
        """The same, on the calling thread (CLI, migrations, benchmarks' setup)."""
        with Session(self._write_engine if write else self._read_engine, expire_on_commit=False) as session:
            result = work(SqlUnitOfWork(session))
            if write:
                session.commit()
            return result

    async def wait_until_idle(self) -> None:
        """Return once the writes queued so far are committed (SQLite's writer; PostgreSQL writes run
        in their callers' threads)."""
        if self._writer is not None:
            await self._writer.wait_until_idle()

    def ping(self) -> None:
        """Raise if the database cannot answer, or is not chatapp's migrated schema."""
        with self.engine.connect() as conn:
            if conn.execute(text("SELECT version_num FROM alembic_version")).scalar() is None:
                raise RuntimeError("database has no schema revision")

"""Scenario d: open a room and page back through a history of 1,000,000 messages, on SQLite and PostgreSQL.

Usage: .venv/bin/python -m bench.history [--messages 1000000] [--backends sqlite postgres] [--pages 200]

For each backend: a fresh database (a SQLite file in a temp dir; a new PostgreSQL database on
CHATAPP_TEST_POSTGRES_URL or postgresql+psycopg://postgres@127.0.0.1:5432/postgres, dropped at the
end), migrated by the app; two users and three rooms made by the real domain services; then the
messages are bulk-loaded (executemany for SQLite, COPY for PostgreSQL, then VACUUM ANALYZE there):
- the big room: --messages messages, with one message in a second room after every OTHER_ROOM_EVERY;
- a small, old room: its few messages are the oldest rows of the table, so opening it is fast only
  if the (room_id, id) index is used (walking the primary key back from the newest id would read
  every row of the table).

Timed, in-process ("server-side", no HTTP), per request kind:
- domain call: `await services.chat.list_messages(actor, room_id, before_id=...)`, as the web app calls it
  (a worker-thread hop, a session, the room/participant check and the page query, mapped to objects);
- no thread hop: the same domain call on a Chat whose transactor runs the work on the calling thread;
- bare SQL: the page query the app sends (captured from the engine), replayed on a DBAPI cursor;
- PostgreSQL only: the "Execution Time" EXPLAIN ANALYZE reports for that query.
Every page the domain returns is checked (right ids, oldest first, has_older) outside the timing.
Prints markdown tables, the machine/date line and the plans of the page queries.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url

from chatapp.app import Runtime, build_runtime, migrate_database
from chatapp.config import Settings
from chatapp.domain.access import MAX_ID
from chatapp.domain.accounts import SignUpForm
from chatapp.domain.chat import Chat
from chatapp.domain.models import Actor, MessagePage
from chatapp.store.db import SqlTransactor
from chatapp.store.pubsub import InProcessPubSub

T = TypeVar("T")

POSTGRES_ADMIN_URL = os.environ.get(
    "CHATAPP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
TARGET_MS = 5.0
OTHER_ROOM_EVERY = 4  # after every 4th message of the big room, one in another room
SMALL_ROOM_MAX = 1000  # messages in the small, old room (fewer for tiny runs)
BATCH = 50_000
PASSWORD = "correct horse battery"
SENTINEL = MAX_ID  # a before_id beyond every message: marks the parameter to replace in the captured SQL
FIRST_CREATED = datetime(2025, 1, 1, tzinfo=UTC)
OPEN, BACK, MIDDLE, OLDEST, SMALL_OPEN, SMALL_BACK = (
    "open (newest 50)",
    "page back",
    "deep page (middle)",
    "deep page (near oldest)",
    "small old room: open",
    "small old room: page back",
)

Row = tuple[int, int, int, str, str]  # id, room_id, participant_id, body, created_at


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def small_room_size(count: int) -> int:
    return min(SMALL_ROOM_MAX, max(2, count // 10))


@dataclass
class Setup:
    actor: Actor  # a member (not the owner) of every room
    room_id: int
    other_room_id: int
    small_room_id: int
    authors: tuple[int, int]  # participant ids in the big room
    other_author: int
    small_author: int


@dataclass
class Stats:
    n: int
    domain: list[float]
    inline: list[float]
    bare: list[float]
    server: list[float] = field(default_factory=list)  # PostgreSQL EXPLAIN ANALYZE execution times


@dataclass
class BackendResult:
    backend: str
    messages: int
    other_messages: int
    small_messages: int
    seed_s: float
    analyze_s: float | None
    size_mb: float
    first_open_ms: float
    stats: dict[str, Stats]
    indexes: list[str]
    plans: dict[str, list[str]]
    thread_hop: list[float]  # asyncio.to_thread of a function that does nothing


@dataclass
class Report:
    machine: str
    load: tuple[float, float]  # 1-minute load average before and after
    results: list[BackendResult]


# --- databases ---------------------------------------------------------------------------------


@contextmanager
def sqlite_database() -> Iterator[tuple[str, Path]]:
    with tempfile.TemporaryDirectory(prefix="chatapp-history-") as tmp:
        yield f"sqlite:///{Path(tmp) / 'chatapp.db'}", Path(tmp)


@contextmanager
def postgres_database() -> Iterator[tuple[str, Path]]:
    """A fresh database on the PostgreSQL server, dropped afterwards."""
    name = f"chatapp_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        with tempfile.TemporaryDirectory(prefix="chatapp-history-") as tmp:
            yield url, Path(tmp)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def make_runtime(url: str, tmp: Path) -> Runtime:
    settings = Settings(_env_file=None, data_dir=tmp / "data", database_url=url)
    runtime = build_runtime(settings)
    migrate_database(runtime)
    return runtime


async def make_rooms(runtime: Runtime) -> Setup:
    """Two users and three rooms, both users in every room: all through the domain services."""
    accounts, rooms = runtime.services.accounts, runtime.services.rooms
    membership = runtime.services.membership
    actors = []
    for username in ("owner", "member"):
        form = SignUpForm(username=username, display_name=username.title(), password=PASSWORD)
        actor = await accounts.authenticate((await accounts.sign_up(form)).token)
        assert actor is not None
        actors.append(actor)
    owner, member = actors
    ids = []
    for name in ("A million messages", "Elsewhere", "Quiet corner"):
        room = await rooms.create_room(owner, name=name)
        await membership.join(member, room.id)
        ids.append(room.id)
    big, other, small = ids

    async def participant(actor: Actor, room_id: int) -> int:
        me = (await rooms.get_room_access(actor, room_id)).me
        assert me is not None
        return me.id

    return Setup(
        actor=member,
        room_id=big,
        other_room_id=other,
        small_room_id=small,
        authors=(await participant(owner, big), await participant(member, big)),
        other_author=await participant(owner, other),
        small_author=await participant(owner, small),
    )


def big_room_ids(count: int) -> list[int]:
    """The ids the big room's messages get from message_batches."""
    first = small_room_size(count) + 1
    return [first + index + index // OTHER_ROOM_EVERY for index in range(count)]


def message_batches(setup: Setup, count: int) -> Iterator[list[Row]]:
    """The small room's messages, then the big room's interleaved with the other room's, BATCH at a time."""

    def created(message_id: int) -> str:
        return (FIRST_CREATED + timedelta(seconds=message_id)).isoformat(" ", "microseconds")[:26]

    batch: list[Row] = []
    next_id = 1
    for index in range(small_room_size(count)):
        batch.append((next_id, setup.small_room_id, setup.small_author, f"Quiet message {index + 1}", created(next_id)))
        next_id += 1
    for index in range(count):
        body = f"Message {index + 1} of the history benchmark: lorem ipsum dolor sit amet, consectetur."
        batch.append((next_id, setup.room_id, setup.authors[index % 2], body, created(next_id)))
        next_id += 1
        if (index + 1) % OTHER_ROOM_EVERY == 0:
            batch.append((next_id, setup.other_room_id, setup.other_author, f"Elsewhere {next_id}", created(next_id)))
            next_id += 1
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def seed_sqlite(engine: Engine, setup: Setup, count: int) -> None:
    """executemany in big transactions, on a connection with the app's own settings (WAL)."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for batch in message_batches(setup, count):
            cursor.execute("BEGIN")
            cursor.executemany(
                "INSERT INTO messages (id, room_id, participant_id, body, created_at) VALUES (?, ?, ?, ?, ?)", batch
            )
            cursor.execute("COMMIT")
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        cursor.close()
    finally:
        raw.close()


def seed_postgres(engine: Engine, setup: Setup, count: int) -> None:
    """COPY ... FROM STDIN through psycopg, then move the id sequence past the loaded ids."""
    raw = engine.raw_connection()
    try:
        pg = raw.driver_connection
        with pg.cursor() as cursor:
            with cursor.copy("COPY messages (id, room_id, participant_id, body, created_at) FROM STDIN") as copy:
                for batch in message_batches(setup, count):
                    copy.write("".join(f"{i}\t{r}\t{p}\t{b}\t{c}+00\n" for i, r, p, b, c in batch))
            cursor.execute("SELECT setval(pg_get_serial_sequence('messages', 'id'), (SELECT max(id) FROM messages))")
        pg.commit()
    finally:
        raw.close()


def vacuum_analyze(engine: Engine) -> None:
    """ANALYZE for the planner's statistics; VACUUM sets hint bits and the visibility map, as autovacuum would."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM (ANALYZE) messages")


def database_size_mb(engine: Engine, url: str) -> float:
    if engine.dialect.name == "sqlite":
        path = Path(make_url(url).database or "")
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 2**20
    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one() / 2**20


def index_descriptions(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'messages'")
        else:
            rows = conn.exec_driver_sql("SELECT indexdef FROM pg_indexes WHERE tablename = 'messages' ORDER BY 1")
        return [row[0] for row in rows if row[0]]


# --- measuring ---------------------------------------------------------------------------------


class InlineTransactor:
    """The app's transactor minus the worker-thread hop: same engine, session and SQL, on this thread."""

    def __init__(self, engine: Engine) -> None:
        self._tx = SqlTransactor(engine)

    async def run(self, work: Callable[[Any], T], *, write: bool = False) -> T:
        return self._tx.run_sync(work, write=write)


@dataclass
class PageQuery:
    """The page query exactly as the app sends it, with the before_id parameter marked by SENTINEL."""

    statement: str
    parameters: Any

    def parameters_for(self, before_id: int | None) -> Any:
        if isinstance(self.parameters, dict):
            return {k: (before_id if v == SENTINEL else v) for k, v in self.parameters.items()}
        return tuple(before_id if v == SENTINEL else v for v in self.parameters)


async def capture_page_query(runtime: Runtime, actor: Actor, room_id: int, before_id: int | None) -> PageQuery:
    captured: list[PageQuery] = []

    def listen(_conn, _cursor, statement, parameters, _context, _executemany) -> None:
        if "FROM messages" in statement and "ORDER BY messages.id DESC" in statement:
            captured.append(PageQuery(statement, parameters))

    event.listen(runtime.engine, "before_cursor_execute", listen)
    try:
        await runtime.services.chat.list_messages(actor, room_id, before_id=before_id)
    finally:
        event.remove(runtime.engine, "before_cursor_execute", listen)
    assert len(captured) == 1, f"expected one page query, saw {len(captured)}"
    return captured[0]


class History:
    """The ids one room holds, in order, to check every page the app returns."""

    def __init__(self, room_id: int, ids: list[int], page_size: int) -> None:
        self.room_id = room_id
        self.ids = ids
        self.page_size = page_size

    def expected(self, before_id: int | None) -> tuple[list[int], bool]:
        older = len(self.ids) if before_id is None else bisect.bisect_left(self.ids, before_id)
        return self.ids[max(0, older - self.page_size) : older], older > self.page_size

    def check(self, page: MessagePage, before_id: int | None) -> None:
        ids, has_older = self.expected(before_id)
        got = [m.id for m in page.messages]
        if got != ids or page.has_older != has_older or any(m.room_id != self.room_id for m in page.messages):
            raise AssertionError(f"wrong page before {before_id}: {got[:3]}...{got[-3:]} (has_older={page.has_older})")


async def time_calls(chat: Chat, actor: Actor, history: History, before_ids: list[int | None]) -> list[float]:
    times = []
    for before_id in before_ids:
        started = time.perf_counter()
        page = await chat.list_messages(actor, history.room_id, before_id=before_id)
        times.append(time.perf_counter() - started)
        history.check(page, before_id)
    return times


@contextmanager
def dbapi_cursor(engine: Engine) -> Iterator[Any]:
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        yield cursor
        cursor.close()
        raw.rollback()
    finally:
        raw.close()


def time_bare(engine: Engine, query: PageQuery, history: History, before_ids: list[int | None]) -> list[float]:
    times = []
    with dbapi_cursor(engine) as cursor:
        for before_id in before_ids:
            parameters = query.parameters_for(before_id)
            started = time.perf_counter()
            cursor.execute(query.statement, parameters)
            rows = cursor.fetchall()
            times.append(time.perf_counter() - started)
            ids, has_older = history.expected(before_id)
            assert len(rows) == len(ids) + has_older, f"bare SQL before {before_id}: {len(rows)} rows"
    return times


def postgres_execution(engine: Engine, query: PageQuery, before_ids: list[int | None]) -> list[float]:
    """Seconds of server-side execution per query, as EXPLAIN ANALYZE reports them."""
    with dbapi_cursor(engine) as cursor:
        times = []
        for before_id in before_ids:
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + query.statement, query.parameters_for(before_id))
            times.append(cursor.fetchone()[0][0]["Execution Time"] / 1000)
        return times


def explain(engine: Engine, query: PageQuery, before_id: int | None) -> list[str]:
    with dbapi_cursor(engine) as cursor:
        parameters = query.parameters_for(before_id)
        if engine.dialect.name == "sqlite":
            cursor.execute("EXPLAIN QUERY PLAN " + query.statement, parameters)
            lines = [row[3] for row in cursor.fetchall()]
        else:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + query.statement, parameters)
            lines = [row[0] for row in cursor.fetchall()]
    return [" ".join(query.statement.split()), *lines]


async def page_chain(chat: Chat, actor: Actor, history: History, pages: int) -> list[int | None]:
    """The before_ids of up to `pages` consecutive "load older" clicks from the newest page."""
    chain: list[int | None] = []
    page = await chat.list_messages(actor, history.room_id)
    while len(chain) < pages and page.has_older:
        chain.append(page.messages[0].id)
        page = await chat.list_messages(actor, history.room_id, before_id=chain[-1])
    return chain


async def time_thread_hop(times: int) -> list[float]:
    """The bare cost of the worker-thread hop every domain call makes."""
    result = []
    for _ in range(times):
        started = time.perf_counter()
        await asyncio.to_thread(int)
        result.append(time.perf_counter() - started)
    return result


async def measure(
    runtime: Runtime, setup: Setup, big: History, small: History, pages: int
) -> tuple[dict[str, Stats], dict[str, list[str]], list[float]]:
    engine, settings, chat, actor = runtime.engine, runtime.settings, runtime.services.chat, setup.actor
    inline_chat = Chat(
        tx=InlineTransactor(engine),
        pubsub=InProcessPubSub(),
        max_message_chars=settings.max_message_chars,
        page_size=settings.page_size,
    )
    rng = random.Random(3)
    count, size = len(big.ids), big.page_size
    low, high = int(count * 0.45), max(int(count * 0.45) + 1, int(count * 0.55))
    oldest_span = min(count, size + max(size, count // 100))  # includes the oldest, partial pages
    cases: dict[str, tuple[History, list[int | None]]] = {
        OPEN: (big, [None] * pages),
        BACK: (big, await page_chain(chat, actor, big, pages)),
        MIDDLE: (big, [big.ids[rng.randrange(low, high)] for _ in range(pages)]),
        OLDEST: (big, [big.ids[rng.randrange(1, oldest_span)] for _ in range(pages)]),
        SMALL_OPEN: (small, [None] * pages),
        SMALL_BACK: (small, await page_chain(chat, actor, small, pages)),
    }
    queries = {
        (history.room_id, before): await capture_page_query(runtime, actor, history.room_id, before)
        for history in (big, small)
        for before in (None, SENTINEL)
    }
    postgres = engine.dialect.name == "postgresql"
    stats = {}
    for kind, (history, before_ids) in cases.items():
        if not before_ids:
            continue
        query = queries[history.room_id, None if before_ids[0] is None else SENTINEL]
        stats[kind] = Stats(
            n=len(before_ids),
            domain=await time_calls(chat, actor, history, before_ids),
            inline=await time_calls(inline_chat, actor, history, before_ids),
            bare=time_bare(engine, query, history, before_ids),
            server=postgres_execution(engine, query, before_ids) if postgres else [],
        )
    plans = {
        f"{BACK}, from the middle of the big room": explain(
            engine, queries[big.room_id, SENTINEL], big.ids[len(big.ids) // 2]
        ),
        SMALL_OPEN: explain(engine, queries[small.room_id, None], None),
    }
    return stats, plans, await time_thread_hop(pages)


async def bench_backend(backend: str, count: int, pages: int) -> BackendResult:
    database = sqlite_database() if backend == "sqlite" else postgres_database()
    with database as (url, tmp):
        runtime = make_runtime(url, tmp)
        try:
            setup = await make_rooms(runtime)
            log(f"{backend}: seeding {count:,} messages")
            started = time.perf_counter()
            (seed_sqlite if backend == "sqlite" else seed_postgres)(runtime.engine, setup, count)
            seed_s = time.perf_counter() - started
            analyze_s = None
            if backend == "postgres":
                started = time.perf_counter()
                vacuum_analyze(runtime.engine)
                analyze_s = time.perf_counter() - started
            log(f"{backend}: seeded in {seed_s:.1f} s; measuring")
            page_size = runtime.settings.page_size
            big = History(setup.room_id, big_room_ids(count), page_size)
            small = History(setup.small_room_id, list(range(1, small_room_size(count) + 1)), page_size)
            started = time.perf_counter()
            first = await runtime.services.chat.list_messages(setup.actor, setup.room_id)
            first_open_ms = (time.perf_counter() - started) * 1000
            big.check(first, None)
            stats, plans, thread_hop = await measure(runtime, setup, big, small, pages)
            return BackendResult(
                backend=backend,
                messages=count,
                other_messages=count // OTHER_ROOM_EVERY,
                small_messages=len(small.ids),
                seed_s=seed_s,
                analyze_s=analyze_s,
                size_mb=database_size_mb(runtime.engine, url),
                first_open_ms=first_open_ms,
                stats=stats,
                indexes=index_descriptions(runtime.engine),
                plans=plans,
                thread_hop=thread_hop,
            )
        finally:
            runtime.engine.dispose()


def machine_line(backends: list[str]) -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = []
    if "sqlite" in backends:
        versions.append(f"SQLite {sqlite3.sqlite_version}")
    if "postgres" in backends:
        engine = create_engine(POSTGRES_ADMIN_URL)
        with engine.connect() as conn:
            versions.append(f"PostgreSQL {conn.exec_driver_sql('SHOW server_version').scalar_one().split()[0]}")
        engine.dispose()
    return (
        f"Machine: {os.cpu_count()} cores, {memory:.0f} GiB, Python {platform.python_version()}, "
        f"{', '.join(versions)}, {date.today().isoformat()}."
    )


def run(count: int, backends: list[str], pages: int) -> Report:
    machine = machine_line(backends)
    load_before = os.getloadavg()[0]
    results = [asyncio.run(bench_backend(backend, count, pages)) for backend in backends]
    return Report(machine=machine, load=(load_before, os.getloadavg()[0]), results=results)


# --- output --------------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def format_report(report: Report) -> str:
    lines = [report.machine, ""]
    lines += [
        "| backend | big room | other room | small old room | seeding | VACUUM ANALYZE | database size | first open |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report.results:
        analyze = f"{r.analyze_s:.1f} s" if r.analyze_s is not None else "-"
        lines.append(
            f"| {r.backend} | {r.messages:,} | {r.other_messages:,} | {r.small_messages:,} | {r.seed_s:.1f} s | "
            f"{analyze} | {r.size_mb:.1f} MiB | {r.first_open_ms:.2f} ms |"
        )
    lines += [
        "",
        "| backend | request | n | domain call p50 | p99 | max | no thread hop p50 | bare SQL p50 | bare SQL p99 "
        "| PG execution p50 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for r in report.results:
        missed = []
        for kind, s in r.stats.items():
            server = ms(statistics.median(s.server)) if s.server else "-"
            p99 = percentile(s.domain, 0.99)
            lines.append(
                f"| {r.backend} | {kind} | {s.n} | {ms(statistics.median(s.domain))} | {ms(p99)} | "
                f"{ms(max(s.domain))} | {ms(statistics.median(s.inline))} | {ms(statistics.median(s.bare))} | "
                f"{ms(percentile(s.bare, 0.99))} | {server} |"
            )
            if p99 * 1000 > TARGET_MS:
                missed.append(f"{kind} p99 {ms(p99)}")
        verdicts.append(f"{r.backend}: " + (f"missed ({'; '.join(missed)})" if missed else "met"))
    lines += [
        "",
        f"Target (a history page <= {TARGET_MS:g} ms, domain call p99): " + "; ".join(verdicts) + ".",
        f"1-minute load average before / after the run: {report.load[0]:.2f} / {report.load[1]:.2f}.",
    ]
    for r in report.results:
        lines.append(
            f"{r.backend}: an empty asyncio.to_thread round trip (the hop in every domain call): "
            f"p50 {ms(statistics.median(r.thread_hop))}, p99 {ms(percentile(r.thread_hop, 0.99))}."
        )
    for r in report.results:
        lines += ["", f"{r.backend}: indexes on messages:", *(f"    {i}" for i in r.indexes)]
        for name, plan in r.plans.items():
            lines += [f"{r.backend}: plan of {name}:", *(f"    {p}" for p in plan)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1_000_000, help="messages in the big room")
    parser.add_argument("--backends", nargs="+", choices=["sqlite", "postgres"], default=["sqlite", "postgres"])
    parser.add_argument("--pages", type=int, default=200, help="requests of each kind (page back: consecutive)")
    args = parser.parse_args(argv)
    if args.messages < 2 or args.pages < 1:
        parser.error("need --messages >= 2 and --pages >= 1")
    print(format_report(run(args.messages, args.backends, args.pages)), flush=True)


if __name__ == "__main__":
    main()

"""What the bus between processes costs a writer: scenario e (20 posters, bench/writes.py) on one
chatapp process on PostgreSQL, with its bus in memory (one process), over PostgreSQL's LISTEN/NOTIFY,
and over Redis, runs alternating; each on a fresh database. The posts are the same; the two buses also
send every event to a channel no other process listens to here (the writer's share of a deployment's
cost: NOTIFY takes a database-wide lock at commit).

Usage: .venv/bin/python -m bench.bus_cost [--rounds 2] [--posters 20] [--messages 100]
Needs PostgreSQL (CHATAPP_TEST_POSTGRES_URL or postgresql+psycopg://postgres@127.0.0.1:5432/postgres)
and, for the Redis rows, Redis on 127.0.0.1:6379.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.fanout import fresh_chatapp
from bench.machine import describe
from bench.writes import chatapp_writes

ADMIN_URL = os.environ.get("CHATAPP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
BUSES = {"memory": "memory://", "postgres": None, "redis": "redis://127.0.0.1:6379/0"}


@contextmanager
def fresh_database():
    name = f"chatapp_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def one_run(bus: str, posters: int, messages: int) -> float:
    """Messages saved and delivered per second with this bus."""
    with fresh_database() as url:
        env = {"CHATAPP_DATABASE_URL": url}
        if BUSES[bus] is not None:
            env["CHATAPP_PUBSUB_URL"] = BUSES[bus]
        with fresh_chatapp(env) as running:
            return asyncio.run(chatapp_writes(running.base, posters, messages))["per_second"]


def run(rounds: int, posters: int, messages: int) -> dict[str, list[float]]:
    """Writes per second of each bus, `rounds` runs each, alternating."""
    rates: dict[str, list[float]] = {bus: [] for bus in BUSES}
    for _ in range(rounds):
        for bus in BUSES:
            rates[bus].append(one_run(bus, posters, messages))
    return rates


def delays(kind: str, events: int = 2000, per_second: float = 500.0) -> list[float]:
    """Seconds from publish in one "process" (a BusPubSub) to delivery in another, `events` at a
    steady `per_second`, over PostgreSQL (kind "postgres") or Redis."""
    from chatapp.domain.events import AiNotice
    from chatapp.store.bus import BusPubSub
    from chatapp.store.bus_postgres import PostgresTransport
    from chatapp.store.bus_redis import RedisTransport

    async def measure(url: str) -> list[float]:
        def transport():
            return PostgresTransport(url, "bench") if kind == "postgres" else RedisTransport(url, "bench")

        sender, receiver = BusPubSub(transport()), BusPubSub(transport())
        await sender.start()
        await receiver.start()
        arrived: list[float] = []
        receiver.subscribe("room:1", lambda event: arrived.append(time.perf_counter() - float(event.text)))
        for _ in range(events):
            await sender.publish("room:1", AiNotice(room_id=1, text=repr(time.perf_counter())))
            await asyncio.sleep(1 / per_second)
        deadline = time.perf_counter() + 10
        while len(arrived) < events and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        await sender.stop()
        await receiver.stop()
        return arrived

    if kind == "redis":
        return asyncio.run(measure(BUSES["redis"] or ""))
    with fresh_database() as url:
        return asyncio.run(measure(url))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--posters", type=int, default=20)
    parser.add_argument("--messages", type=int, default=100, help="per poster")
    args = parser.parse_args(argv)
    print(describe())
    rates = run(args.rounds, args.posters, args.messages)
    memory = sum(rates["memory"]) / len(rates["memory"])
    print("| bus | writes/s (each run) | mean | / memory |")
    print("|---|---|---|---|")
    for bus, values in rates.items():
        mean = sum(values) / len(values)
        print(f"| {bus} | {' / '.join(f'{v:.0f}' for v in values)} | {mean:.0f} | {mean / memory:.2f} |")
    print("\n| bus | events | delivered | delay p50 | p99 (publish in one process to delivery in another) |")
    print("|---|---|---|---|---|")
    for kind in ("postgres", "redis"):
        got = sorted(delays(kind))
        p50, p99 = got[len(got) // 2], got[min(len(got) - 1, int(len(got) * 0.99))]
        print(f"| {kind} | 2000 at 500/s | {len(got)} | {p50 * 1000:.2f} ms | {p99 * 1000:.2f} ms |")


if __name__ == "__main__":
    main()

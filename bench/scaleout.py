"""Scenario i: several processes behind nginx (deploy/nginx.conf), on one PostgreSQL.

Usage: .venv/bin/python -m bench.scaleout [--processes 2 4] [--clients 1000 2000] [--rounds 5]
       [--posters 20] [--messages 50]

Fan-out: N browser-like tabs spread evenly over P `python -m chatapp` processes (nginx's route
cookie sends each user's tabs to one process); a tab on the first process sends a message; the time
until all N have it (it crosses to the other processes over PostgreSQL LISTEN/NOTIFY). The floor:
P bare python-socketio servers fanning out with python-socketio's own AsyncRedisManager, N sockets
spread the same way behind the same nginx, one emit to all; the ratio chatapp/floor (p50).

Writes: 20 posters spread over P processes send as fast as they can; messages saved and delivered to
a watcher per second, as a ratio to the same on one process behind the same nginx.

Each layout gets a fresh database on the server of CHATAPP_TEST_POSTGRES_URL (default
postgresql+psycopg://postgres@127.0.0.1:5432/postgres, as bench/bus_cost.py); Redis on 127.0.0.1:6379.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

from bench import machine
from bench.browserlike import Page, Tab, open_tab
from bench.bus_cost import BUSES, fresh_database
from bench.fanout import TABS_PER_USER, Server, bare_fanout_to, measure, open_room_with_tabs, percentile, server
from bench.nginx import route_to, running_nginx
from bench.writes import timed

SECRET = "bench-scaleout-secret-0123456789abcdefghijklmn"


@contextmanager
def behind_nginx(servers: list[Server]) -> Iterator[tuple[str, list[str]]]:
    """nginx in front of the servers; its URL and, per server, a route cookie value that leads there."""
    upstreams = [s.base.removeprefix("http://") for s in servers]
    with tempfile.TemporaryDirectory() as tmp, running_nginx(upstreams, Path(tmp) / "nginx") as url:
        yield url, [route_to(url, upstream) for upstream in upstreams]


@contextmanager
def chatapp_processes(count: int, database_url: str) -> Iterator[list[Server]]:
    """`count` chatapp processes on one database (the first migrates it), each its own data dir."""
    with ExitStack() as stack:
        servers = []
        for _ in range(count):
            data = stack.enter_context(tempfile.TemporaryDirectory())
            env = {
                "CHATAPP_DATA_DIR": str(Path(data) / "data"),
                "CHATAPP_DATABASE_URL": database_url,
                "CHATAPP_SECRET_KEY": SECRET,
                "CHATAPP_LOG_LEVEL": "warning",
                "CHATAPP_MESSAGE_BURST": "0",
                "CHATAPP_SIGN_UP_LIMIT": "0",
                "CHATAPP_FORWARDED_ALLOW_IPS": "127.0.0.1",
            }
            servers.append(stack.enter_context(server(["-m", "chatapp"], env)))
        yield servers


@contextmanager
def bare_processes(count: int) -> Iterator[list[Server]]:
    """`count` bare python-socketio servers fanning out through Redis (AsyncRedisManager)."""
    env = {
        "BENCH_REDIS_URL": BUSES["redis"],
        "BENCH_REDIS_CHANNEL": f"bench-{uuid.uuid4().hex[:8]}",
    }
    with ExitStack() as stack:
        yield [stack.enter_context(server(["-m", "bench.bare_server", "{port}"], env)) for _ in range(count)]


def routed_http(url: str, route: str) -> httpx.AsyncClient:
    """An HTTP client whose requests (and its tabs' sockets) nginx sends to the route's process."""
    http = httpx.AsyncClient(base_url=url, timeout=60)
    http.cookies.set("chatapp_route", route, domain="127.0.0.1", path="/")
    return http


def viewer_route(routes: list[str], user: int) -> str:
    """User 0 posts from the first process; viewers' users take the processes in turn."""
    return routes[0] if user == 0 else routes[(user - 1) % len(routes)]


async def chatapp_fanout(url: str, routes: list[str], clients: int, rounds: int) -> list[float]:
    room = await open_room_with_tabs(
        url, clients, f"scale-out {clients}", lambda n: routed_http(url, viewer_route(routes, n))
    )
    try:
        await check_spread(room.https, len({viewer_route(routes, n) for n in range(len(room.https))}))
        await asyncio.sleep(1)
        return await measure(room.viewers, room.post, rounds)
    finally:
        await room.close()


async def check_spread(https: list[httpx.AsyncClient], expected: int) -> None:
    """The users' requests (and so their tabs) reach `expected` different processes."""
    upstreams = {(await http.get("/healthz")).headers.get("x-chatapp-upstream") for http in https}
    if len(upstreams) != expected:
        raise RuntimeError(f"the tabs reached {len(upstreams)} processes, not {expected}: {upstreams}")


async def bare_fanout(url: str, routes: list[str], clients: int, rounds: int) -> list[float]:
    page = Page(url=url, query={"client_id": "bare"}, elements={})
    tabs = []
    for i in range(clients):
        cookies = httpx.Cookies()
        cookies.set("chatapp_route", routes[(i // TABS_PER_USER) % len(routes)], domain="127.0.0.1", path="/")
        tabs.append(Tab(base_url=url, page=page, cookies=cookies))
    async with routed_http(url, routes[0]) as http:
        return await bare_fanout_to(tabs, http, rounds, settle_s=1)


async def spread_writes(url: str, routes: list[str], posters: int, messages: int) -> dict:
    """The room owner's tabs post, spread over the processes; a watcher (another user) on the first."""
    room = await open_room_with_tabs(url, 1, f"writes over {len(routes)}", lambda n: routed_http(url, routes[0]))
    try:
        path = room.poster.page.url.split(url, 1)[1]
        session = next(c for c in room.https[0].cookies.jar if c.name == "chatapp_session")
        tabs = []
        for n in range(posters):
            http = routed_http(url, routes[n % len(routes)])
            http.cookies.set(session.name, session.value or "", domain=session.domain, path=session.path)
            room.https.append(http)
            tabs.append(await open_tab(url, http, path))
        room.viewers += tabs
        return await timed(posters, messages, room.viewers[0], lambda n, text: room.post(text, tabs[n]))
    finally:
        await room.close()


def fanout_rows(processes: list[int], clients: list[int], rounds: int) -> list[dict]:
    rows = []
    for count in processes:
        for n in clients:
            with fresh_database() as db, chatapp_processes(count, db) as apps, behind_nginx(apps) as (url, routes):
                app = asyncio.run(chatapp_fanout(url, routes, n, rounds))
            with bare_processes(count) as bares, behind_nginx(bares) as (url, routes):
                bare = asyncio.run(bare_fanout(url, routes, n, rounds))
            rows.append(
                {
                    "processes": count,
                    "clients": n,
                    "app_p50": statistics.median(app),
                    "app_p99": percentile(app, 0.99),
                    "bare_p50": statistics.median(bare),
                    "bare_p99": percentile(bare, 0.99),
                }
            )
            print_fanout_row(rows[-1])
    return rows


def writes_rows(processes: list[int], posters: int, messages: int) -> list[dict]:
    rows = []
    for count in [1, *processes]:
        with fresh_database() as db, chatapp_processes(count, db) as apps, behind_nginx(apps) as (url, routes):
            rows.append({"processes": count, **asyncio.run(spread_writes(url, routes, posters, messages))})
    return rows


def print_fanout_row(row: dict) -> None:
    print(
        f"| {row['processes']} | {row['clients']} | {row['app_p50'] * 1000:.0f} ms | {row['app_p99'] * 1000:.0f} ms | "
        f"{row['bare_p50'] * 1000:.0f} ms | {row['bare_p99'] * 1000:.0f} ms | {row['app_p50'] / row['bare_p50']:.2f} |",
        flush=True,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--clients", type=int, nargs="+", default=[1000, 2000])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--posters", type=int, default=20)
    parser.add_argument("--messages", type=int, default=50, help="per poster")
    args = parser.parse_args(argv)
    print(machine.describe(), flush=True)
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    print("Fan-out behind nginx: one message to N tabs spread over P processes, until all have it.")
    print("The floor: P python-socketio servers with AsyncRedisManager behind the same nginx.\n")
    print("| P | N | chatapp p50 | chatapp p99 | socket.io + Redis p50 | p99 | chatapp/floor (p50) |")
    print("|---|---|---|---|---|---|---|")
    fanout_rows(args.processes, args.clients, args.rounds)
    print(f"\nWrites: {args.posters} posters spread over P processes, saved and delivered to a watcher.\n")
    print("| P | messages | all delivered after | per second | ratio to one process |")
    print("|---|---|---|---|---|")
    rows = writes_rows(args.processes, args.posters, args.messages)
    one = rows[0]["per_second"]
    for row in rows:
        print(
            f"| {row['processes']} | {row['messages']} | {row['seconds']:.2f} s | {row['per_second']:.0f} | "
            f"{row['per_second'] / one:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()

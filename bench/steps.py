"""Scenario j: how many live tabs one process holds. One chatapp process, one room; tabs are added in
steps (250, 500, ... 2,000), and at each step one message goes to all of them `--rounds` times: the
time until all have it (p50, p99) and the server's resident memory. The same steps on a bare
python-socketio server (bench/bare_server.py) are the floor of this machine and client.

Usage: .venv/bin/python -m bench.steps [--steps 250 500 1000 1500 2000] [--rounds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics

import httpx

from bench import machine
from bench.browserlike import Page, Tab, open_tab, sign_up
from bench.fanout import (
    ROOM_LINK,
    TABS_PER_USER,
    Server,
    bare_server,
    broadcast_rounds,
    fresh_chatapp,
    measure,
    percentile,
)


async def _grow_chatapp(base: str, https: list[httpx.AsyncClient], room: str, viewers: list[Tab], size: int) -> None:
    """Open viewer tabs (TABS_PER_USER per user, users signed up as needed) until there are `size`."""
    while len(viewers) < size:
        user = 1 + len(viewers) // TABS_PER_USER
        if user >= len(https):
            http = httpx.AsyncClient(base_url=base, timeout=60)
            await sign_up(http, f"steps{user}")
            https.append(http)
        viewers.append(await open_tab(base, https[user], room))


def _row(tabs: int, times: list[float], server: Server) -> dict:
    return {
        "tabs": tabs,
        "p50": statistics.median(times),
        "p99": percentile(times, 0.99),
        "rss_mib": server.rss_kib() / 1024,
    }


async def chatapp_steps(running: Server, steps: list[int], rounds: int) -> list[dict]:
    base = running.base
    poster_http = httpx.AsyncClient(base_url=base, timeout=60)
    await sign_up(poster_http, "steps0")
    https = [poster_http]
    lobby = await open_tab(base, poster_http, "/")
    await lobby.fill("Room name", "steps")
    await lobby.click("Create room")
    await asyncio.sleep(0.5)
    await lobby.close()
    room = ROOM_LINK.findall((await poster_http.get("/")).text)[0]
    poster = await open_tab(base, poster_http, room)
    viewers: list[Tab] = []
    rows = []
    try:
        for size in steps:
            await _grow_chatapp(base, https, room, viewers, size)
            await asyncio.sleep(1)
            rows.append(_row(size, await measure(viewers, poster.send_message, rounds), running))
            print(f"  chatapp, {size} tabs: p99 {rows[-1]['p99'] * 1000:.0f} ms", flush=True)
    finally:
        for tab in [poster, *viewers]:
            await tab.close()
        for http in https:
            await http.aclose()
    return rows


async def bare_steps(running: Server, steps: list[int], rounds: int) -> list[dict]:
    base = running.base
    page = Page(url=base, query={"client_id": "bare"}, elements={})
    tabs: list[Tab] = []
    rows = []
    async with httpx.AsyncClient(base_url=base) as http:
        try:
            for size in steps:
                while len(tabs) < size:
                    tab = Tab(base_url=base, page=page, cookies=httpx.Cookies())
                    await tab.connect()
                    tabs.append(tab)
                await asyncio.sleep(1)
                rows.append(_row(size, await broadcast_rounds(http, tabs, rounds), running))
        finally:
            for tab in tabs:
                await tab.close()
    return rows


def run(steps: list[int], rounds: int) -> list[tuple[dict, dict]]:
    """Each step on chatapp and on the bare server: (chatapp row, bare row) per step."""
    with fresh_chatapp() as running:
        app = asyncio.run(chatapp_steps(running, steps, rounds))
    with bare_server() as running:
        bare = asyncio.run(bare_steps(running, steps, rounds))
    return list(zip(app, bare, strict=True))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, nargs="+", default=[250, 500, 1000, 1500, 2000])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args(argv)
    print(machine.describe(), flush=True)
    rows = run(args.steps, args.rounds)
    print("\n| tabs | chatapp p50 | chatapp p99 | chatapp RSS | bare p50 | bare p99 | bare RSS | chatapp/bare (p99) |")
    print("|---|---|---|---|---|---|---|---|")
    for a, b in rows:
        ratio = a["p99"] / b["p99"]
        print(
            f"| {a['tabs']} | {a['p50'] * 1000:.0f} ms | {a['p99'] * 1000:.0f} ms | {a['rss_mib']:.0f} MiB | "
            f"{b['p50'] * 1000:.0f} ms | {b['p99'] * 1000:.0f} ms | {b['rss_mib']:.0f} MiB | {ratio:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()

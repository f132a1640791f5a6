"""Scenario f: one AI reply streamed live to N browser-like clients of a room.

Usage: .venv/bin/python -m bench.ai_stream [--clients 1 50 200] [--tokens 500] [--tokens-per-second 50]
       [--no-deflate] [--reply-file README.md]
Starts `python -m chatapp` with the fake provider (tests/fake_llm.py, run in this process) as its model,
opens N viewer tabs of a room (bench/browserlike.py) besides the poster's tab, lets one short warm-up
reply pass, then posts "@ai ..." and follows the paced reply ("tok0 tok1 ...", or the first words of
--reply-file: prose compresses less) until every viewer has "ai_reply_ended":

- server CPU: utime + stime of the server process (/proc/<pid>/stat) from the post until the end on every
  screen, as % of one core over that time;
- bytes per client: the socket.io frames of the reply (from "ai_reply_started" to "ai_reply_ended", the saved
  message included) as the server hands them to the websocket, uncompressed, with their websocket headers; and
  the TCP payload bytes the client's socket received from the post until the end (the kernel's
  tcpi_bytes_received; it includes the @ai message itself). By default the clients offer permessage-deflate,
  as browsers do, so the wire bytes are compressed; --no-deflate connects like the other scenarios' clients;
- added delay: for each token, the moment the delta carrying it reaches a client's websocket minus the moment
  the provider wrote it (the fake's own timestamp of each chunk it sends), over every token and client;
  "first token" is that delay for the reply's first token, over clients.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import json
import os
import socket
import statistics
import struct
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import socketio

from bench.browserlike import Tab, load_page, sign_up
from bench.fanout import TABS_PER_USER, RoomTabs, Server, fresh_chatapp, open_room_with_tabs, percentile
from chatapp.live.wire import AI_EVENT
from tests.fake_llm import FakeLLM, Script

TCPI_BYTES_RECEIVED = 128  # offset of tcpi_bytes_received (u64) in Linux's struct tcp_info


class TimedFake(FakeLLM):
    """The fake provider, also keeping the time of every chunk it writes, per request.

    The fake calls _changed() after each write, having set the request's last_chunk_at just before it:
    so a request's chunk times are the role chunk, then each content token, then the tail.
    """

    def __init__(self) -> None:
        super().__init__()
        self.chunk_times: dict[int, list[float]] = {}

    def _changed(self) -> None:
        rec = self.last_request
        if rec is not None and rec.last_chunk_at is not None:
            times = self.chunk_times.setdefault(rec.index, [])
            if not times or times[-1] != rec.last_chunk_at:
                times.append(rec.last_chunk_at)
        super()._changed()

    def token_times(self, rec) -> list[float]:
        """When each content token of a finished streamed request was written."""
        times = self.chunk_times[rec.index][1 : 1 + rec.tokens_sent]
        if len(times) != rec.tokens_sent or times[0] != rec.first_token_at:
            raise RuntimeError("the fake's chunk times do not match its record")
        return times


@contextmanager
def chatapp_with_ai(api_base: str):
    """`python -m chatapp` on a new, empty data dir, its AI model being the fake provider."""
    ai = {
        "CHATAPP_AI_MODEL": "openai/fake-model",
        "CHATAPP_AI_API_BASE": api_base,
        "CHATAPP_AI_API_KEY": "bench-key",
        "CHATAPP_AI_RETRIES": "0",
    }
    with fresh_chatapp(ai) as running:
        yield running


@dataclass
class Watch:
    """Every websocket frame a tab receives, with its arrival time (wraps the engineio client's receive)."""

    tab: Tab
    frames: list[tuple[float, str]] = field(default_factory=list)
    ended: asyncio.Future | None = None

    def __post_init__(self) -> None:
        ws = self.tab.sio.eio.ws
        receive = ws.receive

        async def timed_receive(*args, **kwargs):
            message = await receive(*args, **kwargs)
            now = time.monotonic()
            if isinstance(message.data, str | bytes):
                self.frames.append((now, message.data))
                if '"ai_reply_ended"' in str(message.data) and self.ended and not self.ended.done():
                    self.ended.set_result(now)
            return message

        ws.receive = timed_receive

    def start(self) -> None:
        self.frames = []
        self.ended = asyncio.get_running_loop().create_future()

    def tcp_bytes(self) -> int:
        """TCP payload bytes this tab's socket has received so far (on the wire, before any decompression)."""
        info = self.tab.sio.eio.ws.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
        return struct.unpack_from("Q", info, TCPI_BYTES_RECEIVED)[0]


def frame_bytes(data: str | bytes) -> int:
    """An uncompressed server-to-client websocket frame: its payload and a 2, 4 or 10 byte header."""
    size = len(data.encode() if isinstance(data, str) else data)
    return size + (2 if size < 126 else 4 if size < 65536 else 10)


def reply_frames(frames: list[tuple[float, str]]) -> tuple[list[tuple[float, str]], int]:
    """The AI deltas (arrival time, text) and the bytes of all frames from the reply's start to its end."""
    deltas, total, counting = [], 0, False
    for arrived, data in frames:
        event = json.loads(data[2:]) if isinstance(data, str) and data.startswith("42") else None
        kind = event[1].get("type") if event and event[0] == AI_EVENT else None
        counting = counting or kind == "ai_reply_started"
        if counting:
            total += frame_bytes(data)
        if kind == "ai_reply_delta":
            deltas.append((arrived, event[1]["text"]))
        if kind == "ai_reply_ended":
            break
    return deltas, total


def added_delays(tokens: list[str], sent: list[float], deltas: list[tuple[float, str]]) -> list[float]:
    """Per token: arrival of the delta that completes it on screen minus the provider's write of it."""
    shown = list(itertools.accumulate(len(text) for _, text in deltas))
    ends = itertools.accumulate(len(token) for token in tokens)
    return [deltas[bisect.bisect_left(shown, end)][0] - at for end, at in zip(ends, sent, strict=True)]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def open_room(base: str, clients: int, deflate: bool) -> RoomTabs:
    """A room with the poster's tab and N viewer tabs (TABS_PER_USER per user), offering deflate or not."""
    room = await open_room_with_tabs(base, 0, f"ai stream {clients}")
    path = room.poster.page.url.split(base, 1)[1]
    options = {"websocket_extra_options": {"compress": 15}} if deflate else {}
    for number in range(clients):
        if number % TABS_PER_USER == 0:
            room.https.append(httpx.AsyncClient(base_url=base))
            await sign_up(room.https[-1], f"viewer{number}")
        http = room.https[-1]
        tab = Tab(base, await load_page(http, path), http.cookies, socketio.AsyncClient(reconnection=False, **options))
        await tab.connect()
        room.viewers.append(tab)
    return room


async def ask(room: RoomTabs, watches: list[Watch], timeout: float) -> None:
    """Post an @ai message from the poster's tab; wait until every viewer has the reply's end."""
    for watch in watches:
        watch.start()
    await room.post(f"@ai bench question {time.time_ns()}")
    await asyncio.wait_for(asyncio.gather(*(watch.ended for watch in watches)), timeout)


async def measure(running: Server, fake: TimedFake, clients: int, script: Script, deflate: bool) -> dict:
    room = await open_room(running.base, clients, deflate)
    try:
        watches = [Watch(tab) for tab in room.viewers]
        await asyncio.sleep(1)  # the tabs settle, as in scenario a
        fake.push(Script(tokens=5))  # warm-up: the AI joins the room, litellm's connection is made
        await ask(room, watches, timeout=60)
        await asyncio.sleep(1)
        fake.push(script)
        wire_before, cpu_before, started = [w.tcp_bytes() for w in watches], cpu_seconds(running.pid), time.monotonic()
        await ask(room, watches, timeout=len(script.token_list()) / script.tokens_per_second + 60)
        seconds, cpu = time.monotonic() - started, cpu_seconds(running.pid) - cpu_before
        await asyncio.sleep(0.2)  # frames already written reach the sockets
        wire = [w.tcp_bytes() - before for w, before in zip(watches, wire_before, strict=True)]
    finally:
        await room.close()
    rec = fake.last_request
    tokens, sent = script.token_list(), fake.token_times(rec)
    first, every, frames_bytes, deltas_count = [], [], [], []
    for watch in watches:
        deltas, total = reply_frames(watch.frames)
        if "".join(text for _, text in deltas) != script.text:
            raise RuntimeError("a client did not get the whole reply text")
        delays = added_delays(tokens, sent, deltas)
        first.append(delays[0])
        every += delays
        frames_bytes.append(total)
        deltas_count.append(len(deltas))
    reply_bytes = len(script.text.encode())
    return {
        "clients": clients,
        "deflate": deflate,
        "tokens": len(tokens),
        "reply_bytes": reply_bytes,
        "deltas": max(deltas_count),
        "seconds": seconds,
        "cpu_percent": 100 * cpu / seconds,
        "frame_bytes": max(frames_bytes),
        "wire_bytes": max(wire),
        "first_p50": statistics.median(first),
        "first_max": max(first),
        "token_p50": statistics.median(every),
        "token_p99": percentile(every, 0.99),
        "token_max": max(every),
    }


def run(
    clients_list: list[int], tokens: int, tokens_per_second: float, deflate: bool = True, prose: str | None = None
) -> list[dict]:
    """The scenario for each N; a fresh chatapp data dir per N, one fake provider for all.

    The reply is the fake's "tok0 tok1 ...", or with `prose` the first `tokens` words of that text.
    """
    if prose is None:
        script = Script(tokens=tokens, tokens_per_second=tokens_per_second)
    else:
        script = Script(reply=" ".join(prose.split()[:tokens]), tokens_per_second=tokens_per_second)
    rows = []
    with TimedFake() as fake:
        for clients in clients_list:
            with chatapp_with_ai(fake.base_url) as running:
                rows.append(asyncio.run(measure(running, fake, clients, script, deflate)))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 50, 200])
    parser.add_argument("--tokens", type=int, default=500)
    parser.add_argument("--tokens-per-second", type=float, default=50)
    parser.add_argument(
        "--deflate", action=argparse.BooleanOptionalAction, default=True, help="clients offer permessage-deflate"
    )
    parser.add_argument("--reply-file", type=Path, help='reply with its first words, not "tok0 tok1 ..."')
    args = parser.parse_args(argv)
    prose = args.reply_file.read_text() if args.reply_file else None
    print(
        "| N clients | deflate | reply | deltas | reply took | server CPU | socket.io bytes per client | / reply | "
        "wire bytes per client | / reply | first token added p50 | max | per token added p50 | p99 | max |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in run(args.clients, args.tokens, args.tokens_per_second, args.deflate, prose):
        ms = {key: f"{row[key] * 1000:.1f} ms" for key in row if key.startswith(("first_", "token_"))}
        print(
            f"| {row['clients']} | {'yes' if row['deflate'] else 'no'} | {row['tokens']} tokens, "
            f"{row['reply_bytes']:,} B | {row['deltas']} | {row['seconds']:.2f} s | {row['cpu_percent']:.1f}% | "
            f"{row['frame_bytes']:,} B | {row['frame_bytes'] / row['reply_bytes']:.2f}x | {row['wire_bytes']:,} B | "
            f"{row['wire_bytes'] / row['reply_bytes']:.2f}x | {ms['first_p50']} | {ms['first_max']} | "
            f"{ms['token_p50']} | {ms['token_p99']} | {ms['token_max']} |",
            flush=True,
        )


if __name__ == "__main__":
    main()

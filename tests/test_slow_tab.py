"""A tab that stops reading its socket is left out of the room's broadcasts, not fed an endless queue.

A real server (`python -m chatapp` in a subprocess) and a raw WebSocket client speaking engine.io
and socket.io by hand, with a tiny receive buffer and a one-frame queue, so that it really stops
reading, as a phone on a bad link does. Another tab posts meanwhile. The slow tab has been sent no
more than CHATAPP_LIVE_MAX_BACKLOG broadcasts; when it reads again and says what it took in, as the
page does, it is still connected and is told to catch up (the page then asks for what it missed).
"""

from __future__ import annotations

import asyncio
import json
import socket
import uuid

import httpx
from websockets.asyncio.client import ClientConnection, connect

from bench.browserlike import load_page, open_tab, sign_up
from bench.fanout import ROOM_LINK, fresh_chatapp
from chatapp.live.wire import MESSAGES_EVENT

POSTED = 100
MAX_BACKLOG = 20
BODY = "x" * 2000


async def connect_without_reading(base: str, http: httpx.AsyncClient, path: str) -> tuple[ClientConnection, dict]:
    """Open the room page and connect its socket as the page script does, reading as little as possible."""
    page = await load_page(http, path)
    query = {
        "client_id": page.query["client_id"],
        "next_message_id": str(page.query.get("next_message_id", 0)),
        "implicit_handshake": "true",
        "tab_id": str(uuid.uuid4()),
        "document_id": str(uuid.uuid4()),
        "EIO": "4",
        "transport": "websocket",
    }
    host, port = base.removeprefix("http://").split(":")
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect((host, int(port)))
    raw.setblocking(False)
    cookie = "; ".join(f"{name}={value}" for name, value in http.cookies.items())
    ws = await connect(
        f"ws://{host}:{port}/_nicegui_ws/socket.io/?{httpx.QueryParams(query)}",
        sock=raw,
        additional_headers={"Cookie": cookie},
        max_queue=1,
        max_size=None,
    )
    assert str(await ws.recv()).startswith("0")  # engine.io open
    await ws.send("40")  # socket.io connect to the default namespace
    assert str(await ws.recv()).startswith("40")
    return ws, page.query | {"elements": page.elements}


def said_received(page: dict, seq: int) -> str:
    """The socket.io frame of the message list's "received" event, as the page script sends it."""
    for element_id, element in page["elements"].items():
        for listener in element.get("events", []):
            if listener["type"] == "received":
                event = {
                    "id": int(element_id),
                    "client_id": page["client_id"],
                    "listener_id": listener["listener_id"],
                    "args": [json.dumps(seq)],
                }
                return "42" + json.dumps(["event", event])
    raise LookupError("the page has no message list")


async def read_everything(ws: ClientConnection, idle_s: float = 2) -> tuple[int, int, bool]:
    """Read until nothing comes for `idle_s`, answering pings: live message broadcasts, the latest
    broadcast number and whether the page was asked to catch up."""
    live, seq, resync = 0, 0, False
    while True:
        try:
            frame = str(await asyncio.wait_for(ws.recv(), timeout=idle_s))
        except TimeoutError:
            return live, seq, resync
        if frame == "2":
            await ws.send("3")
        elif frame.startswith('42["chatapp:'):
            live += frame.startswith(f'42["{MESSAGES_EVENT}"')
            seq = max(seq, json.loads(frame[2:])[1].get("seq", 0))
        resync = resync or ("runMethod" in frame and "resync" in frame)


async def test_a_tab_that_stops_reading_is_left_out_and_told_to_catch_up_when_it_reads_again():
    with fresh_chatapp({"CHATAPP_LIVE_MAX_BACKLOG": str(MAX_BACKLOG)}) as server:
        async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:
            await sign_up(http, "ann")
            lobby = await open_tab(server.base, http, "/")
            await lobby.fill("Room name", "Busy")
            await lobby.click("Create room")
            for _ in range(100):
                if rooms := ROOM_LINK.findall((await http.get("/")).text):
                    break
                await asyncio.sleep(0.1)
            await lobby.close()
            slow, page = await connect_without_reading(server.base, http, rooms[0])
            poster = await open_tab(server.base, http, rooms[0])
            last = poster.expect(f"{POSTED - 1}-end")
            for number in range(POSTED):
                await poster.send_message(f"{BODY} {number}-end")
                await asyncio.sleep(0.03)  # one broadcast each
            await asyncio.wait_for(last, timeout=120)  # every message saved and sent to a tab that keeps up

            live, seq, resync = await read_everything(slow)
            assert 0 < live <= MAX_BACKLOG < POSTED and not resync  # left out: what waited for it had a bound
            await slow.send(said_received(page, seq))  # it has taken in all it was sent
            _, _, resync = await read_everything(slow)
            assert resync, "the tab was not asked to catch up"
            await poster.send_message("after the catch-up-end")
            back = await read_everything(slow)
            assert back[0] == 1  # broadcast to again, on the same socket
            await poster.close()
            await slow.close()

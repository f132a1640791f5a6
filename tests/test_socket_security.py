"""The tab socket against forged traffic, on a real server (`python -m chatapp` in a subprocess):
a tab's socket belongs to the session that rendered its page, tab capabilities stay out of the log,
and malformed frames are dropped quietly."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import httpx
import pytest
import socketio

from bench.browserlike import Tab, load_page, open_tab, sign_up
from chatapp.app import build_runtime
from chatapp.config import Settings
from chatapp.log_redaction import redact
from chatapp.pages.session import SESSION_COOKIE
from tests.browser.conftest import RunningApp, start_app, stop_app
from tests.timing import LIVENESS_S, eventually


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningApp]:
    app = start_app(tmp_path / "data", {"CHATAPP_LOG_LEVEL": "info"})
    yield app
    stop_app(app)


def server_log(app: RunningApp) -> str:
    port = app.base_url.rsplit(":", 1)[1]
    return (app.data_dir.parent / f"server-{port}.log").read_text()


async def private_room(app: RunningApp, http: httpx.AsyncClient, name: str = "Secret plans") -> str:
    """The owner's private room, made through the real domain on the server's own database: its path."""
    await sign_up(http, "olga")
    runtime = build_runtime(Settings(_env_file=None, data_dir=app.data_dir))
    try:
        owner = await runtime.services.accounts.authenticate(http.cookies.get(SESSION_COOKIE))
        room = await runtime.services.rooms.create_room(owner, name=name, private=True)
    finally:
        runtime.engine.dispose()
    return f"/rooms/{room.id}"


async def connect_with(tab: Tab, tab_id: str) -> None:
    """Connect as the page script does, with a given tab id (the pair copied from a log line)."""
    query = {
        "client_id": tab.page.query["client_id"],
        "next_message_id": str(tab.page.query.get("next_message_id", 0)),
        "implicit_handshake": "true",
        "tab_id": tab_id,
        "document_id": str(uuid.uuid4()),
    }
    tab.sio.on("*", tab._on_any)
    cookie = "; ".join(f"{name}={value}" for name, value in tab.cookies.items())
    await tab.sio.connect(
        f"{tab.base_url}?{httpx.QueryParams(query)}",
        socketio_path="/_nicegui_ws/socket.io",
        transports=["websocket"],
        headers={"Cookie": cookie} if cookie else {},
        wait_timeout=LIVENESS_S,
    )


async def test_a_copied_client_and_tab_id_without_the_session_cookie_get_nothing(server):
    async with (
        httpx.AsyncClient(base_url=server.base_url) as owner_http,
        httpx.AsyncClient(base_url=server.base_url) as mallory_http,
    ):
        room = await private_room(server, owner_http)
        page = await load_page(owner_http, room)
        tab_id = str(uuid.uuid4())
        owner = Tab(base_url=server.base_url, page=page, cookies=owner_http.cookies)
        await connect_with(owner, tab_id)
        await sign_up(mallory_http, "mallory")
        for cookies in (httpx.Cookies(), mallory_http.cookies):  # no cookie at all, or someone else's session
            thief = Tab(base_url=server.base_url, page=page, cookies=cookies)
            with pytest.raises(socketio.exceptions.ConnectionError):
                await connect_with(thief, tab_id)
            assert not thief.sio.connected
        # Mallory's own tab, on her own page, sends a frame for the owner's page: it is not handled.
        mallory = await open_tab(server.base_url, mallory_http, "/")
        composer = page.find_tag("nicegui-composer")
        listener = next(e for e in page.elements[composer]["events"] if e["type"] == "send")
        forged = {
            "id": int(composer),
            "client_id": page.query["client_id"],
            "listener_id": listener["listener_id"],
            "args": [json.dumps("forged by mallory")],
        }
        await mallory.sio.emit("event", forged)
        # The owner's own tab works: a message it sends comes back to it (and the forged one never came).
        seen: list[str] = []
        owner.listeners.append(seen.append)
        arrived = owner.expect("meet at noon")
        await owner.send_message("meet at noon")
        await asyncio.wait_for(arrived, LIVENESS_S)
        await asyncio.sleep(0.5)
        assert not any("forged by mallory" in text for text in seen)
        assert not mallory.sio.connected  # a frame for someone else's page closes the socket
        await owner.close()


async def test_a_sockets_sid_without_its_cookies_opens_nothing(server):
    """Every later engine.io request names its socket's sid (polling, the upgrade to a WebSocket):
    without the cookies the socket connected with, it is refused."""
    async with (
        httpx.AsyncClient(base_url=server.base_url) as owner_http,
        httpx.AsyncClient(base_url=server.base_url) as anyone,
    ):
        room = await private_room(server, owner_http)
        page = await load_page(owner_http, room)
        owner = Tab(base_url=server.base_url, page=page, cookies=owner_http.cookies)
        # Like a browser, every polling request carries the cookies (python-engineio sends extra headers
        # only with the first; its HTTP session's cookies go with each).
        jar = aiohttp.ClientSession(cookies=dict(owner_http.cookies.items()))
        owner.sio = socketio.AsyncClient(reconnection=False, http_session=jar)
        query = {
            "client_id": page.query["client_id"],
            "next_message_id": "0",
            "implicit_handshake": "true",
            "tab_id": str(uuid.uuid4()),
            "document_id": str(uuid.uuid4()),
        }
        owner.sio.on("*", owner._on_any)
        await owner.sio.connect(
            f"{server.base_url}?{httpx.QueryParams(query)}",
            socketio_path="/_nicegui_ws/socket.io",
            transports=["polling"],
            wait_timeout=LIVENESS_S,
        )
        sid = owner.sio.eio.sid
        polled = await anyone.get(f"/_nicegui_ws/socket.io/?EIO=4&transport=polling&sid={sid}")
        assert polled.status_code == 400
        ws_url = server.base_url.replace("http", "ws") + f"/_nicegui_ws/socket.io/?EIO=4&transport=websocket&sid={sid}"
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.WSServerHandshakeError):
                await session.ws_connect(ws_url)
        arrived = owner.expect("still mine")
        await owner.send_message("still mine")
        await asyncio.wait_for(arrived, LIVENESS_S)
        await owner.close()
        await jar.close()


async def test_well_formed_browser_log_frames_write_a_few_short_lines_at_most(server):
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        tab = await open_tab(server.base_url, http, "/sign-in")
        before = server_log(server)
        for i in range(2000):
            frame = {"client_id": tab.page.query["client_id"], "level": "error", "message": f"forged\nline {i}"}
            await tab.sio.emit("log", frame)
        await tab.sio.emit("log", {"client_id": "not my page", "level": "error", "message": "x"})
        await eventually(lambda: "closed a socket" in server_log(server)[len(before) :])  # the last frame was handled
        await asyncio.sleep(0.5)  # and nothing more comes
    added = server_log(server)[len(before) :]
    assert added.count("a browser reported") == 3
    assert "\nline" not in added.replace("\\n", "")  # one line each: the newline is shown escaped
    assert added.count("closed a socket") == 1  # the frame for someone else's page


async def test_the_log_names_no_client_or_tab_id(server):
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        await sign_up(http, "olga")
        page = await load_page(http, "/")
        tab_id = str(uuid.uuid4())
        tab = Tab(base_url=server.base_url, page=page, cookies=http.cookies)
        await connect_with(tab, tab_id)
        await tab.close()
        # The polling transport puts the ids in ordinary request lines too.
        query = httpx.QueryParams({"client_id": page.query["client_id"], "tab_id": tab_id, "EIO": "4"})
        await http.get(f"/_nicegui_ws/socket.io/?{query}&transport=polling&sid=an-engine-io-sid")
        # A signed flash is readable by anyone (signed, not encrypted): it can hold a /join/ link.
        wrong = await http.post("/auth/sign-in", data={"username": "olga", "password": "wrong", "next": "/join/x"})
        flash = parse_qs(urlsplit(wrong.headers["location"]).query)["f"][0]
        await http.get(wrong.headers["location"])

    def access_lines_written() -> bool:  # up to the last request's (the sign-in page with its flash)
        log = server_log(server)
        return log.count("socket.io/?") >= 2 and "client_id=<redacted>" in log and "f=<redacted>" in log

    await eventually(access_lines_written)  # the lines are there...
    log = server_log(server)
    for secret in (page.query["client_id"], tab_id, "an-engine-io-sid", flash):  # ...without the capabilities
        assert secret not in log


MALFORMED = [
    "4zzz",
    "42{not json",
    '42["event", 1]',
    '42["event", {}]',
    '42["event", {"client_id": 5}]',
    '42["event", {"client_id": "x", "id": "nope"}]',
    '42["handshake", null]',
    '42["handshake", {"client_id": "x"}]',
    '42["javascript_response", []]',
    '42["ack", {"client_id": []}]',
    '42["log", "x"]',
    "45-",
    "46",
    "49",
    '42["event"]',
]


async def test_a_flood_of_malformed_frames_costs_one_log_line_and_the_connection(server):
    ws_url = server.base_url.replace("http", "ws") + "/_nicegui_ws/socket.io/?EIO=4&transport=websocket"
    before = len(server_log(server).splitlines())
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url) as ws:
        opened = await ws.receive_str()
        assert opened.startswith("0")
        await ws.send_str("40")
        assert (await ws.receive_str()).startswith("40")
        sent = 0
        try:
            for i in range(2000):
                await ws.send_str(MALFORMED[i % len(MALFORMED)])
                sent += 1
        except (ConnectionResetError, aiohttp.ClientConnectionError):
            pass
        closed_early = False
        try:
            async with asyncio.timeout(LIVENESS_S):
                while True:
                    message = await ws.receive()
                    if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                        closed_early = True
                        break
        except TimeoutError:
            pass
    await asyncio.sleep(1.0)
    new_lines = server_log(server).splitlines()[before:]
    noisy = [line for line in new_lines if "socket.io/?" not in line]  # access lines are not complaints
    assert closed_early, "the server kept the socket open"
    assert not any("Traceback" in line for line in new_lines), "\n".join(new_lines[:40])
    assert len(noisy) <= 1, "\n".join(noisy[:40])
    async with httpx.AsyncClient(base_url=server.base_url) as http:  # and the server is fine
        assert (await http.get("/healthz")).json()["status"] == "ok"
    assert sent  # (the socket may have been closed before all 2,000 went out)


def test_redaction_keeps_the_line_readable():
    line = '127.0.0.1:5 - "GET /socket.io/?client_id=abc&tab_id=def&old_tab_id=&EIO=4&transport=polling HTTP/1.1" 200'
    assert redact(line) == (
        '127.0.0.1:5 - "GET /socket.io/?client_id=<redacted>&tab_id=<redacted>&old_tab_id=<redacted>'
        '&EIO=4&transport=polling HTTP/1.1" 200'
    )
    assert redact("GET /join/" + "A" * 43 + "/accept") == "GET /join/<token>/accept"


async def test_a_frame_for_a_page_the_socket_did_not_open_closes_it_and_does_nothing(server):
    """A tab's socket may act on its own page only: an event frame naming another page's client id
    (the owner's room, seen over a shoulder) closes the socket, and the room gets nothing."""
    async with (
        httpx.AsyncClient(base_url=server.base_url) as owner_http,
        httpx.AsyncClient(base_url=server.base_url) as mallory_http,
    ):
        room = await private_room(server, owner_http)
        owner = await open_tab(server.base_url, owner_http, room)
        await sign_up(mallory_http, "mallory")
        mallory = await open_tab(server.base_url, mallory_http, "/")
        composer = owner.page.find_tag("nicegui-composer")
        listener = next(e for e in owner.page.elements[composer]["events"] if e["type"] == "send")
        forged = owner.expect("forged words")
        await mallory.sio.emit(
            "event",
            {
                "id": int(composer),
                "client_id": owner.page.query["client_id"],
                "listener_id": listener["listener_id"],
                "args": [json.dumps("forged words")],
            },
        )
        await eventually(lambda: not mallory.sio.connected)  # the forging socket was closed
        arrived = owner.expect("the owner's own")
        await owner.send_message("the owner's own")
        await asyncio.wait_for(arrived, LIVENESS_S)
        assert not forged.done()  # the room never had the forged message
        await owner.close()

"""A client that behaves like a browser tab at the protocol level, for load tests.

It signs in over HTTP (keeping the session cookie), loads a page, reads the NiceGUI client id and
the page's elements from the HTML, connects to NiceGUI's socket.io endpoint with the same query the
page script sends (implicit handshake), and records when a given text first arrives on the socket.
It can also type into an input and click a button, by emitting the events the page script would.
"""

from __future__ import annotations

import ast
import asyncio
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import socketio

_QUERY_RE = re.compile(r"query: (\{'client_id'.*?\}),")
_ELEMENTS_RE = re.compile(r"parseElements\(String\.raw`(.*?)`\)", re.S)


async def sign_up(http: httpx.AsyncClient, username: str, password: str = "bench password 123") -> None:
    """Create an account (or sign in if it exists); the cookie stays in the http client's jar."""
    form = {"username": username, "display_name": username.title(), "password": password}
    response = await http.post("/auth/sign-up", data=form)
    if response.status_code == 303 and "/sign-up?" in response.headers.get("location", ""):
        response = await http.post("/auth/sign-in", data={"username": username, "password": password})
    if response.status_code != 303 or "chatapp_session" not in http.cookies:
        raise RuntimeError(f"could not sign in {username}: {response.status_code}")


@dataclass
class Page:
    """What a loaded page tells a client: its NiceGUI client id and its elements."""

    url: str
    query: dict[str, Any]
    elements: dict[str, dict[str, Any]]

    def find_tag(self, tag: str) -> str:
        """The id of the (first) element rendered as `tag`, e.g. "nicegui-composer"."""
        for element_id, element in self.elements.items():
            if element.get("tag") == tag:
                return element_id
        raise LookupError(f"no <{tag}> on {self.url}")

    def find(self, *, label: str) -> tuple[str, dict[str, Any]]:
        """The element whose label prop equals `label`."""
        for element_id, element in self.elements.items():
            if element.get("props", {}).get("label") == label:
                return element_id, element
        raise LookupError(f"no element labelled {label!r} on {self.url}")


async def load_page(http: httpx.AsyncClient, path: str) -> Page:
    """GET a NiceGUI page and parse what its script would use."""
    response = await http.get(path)
    response.raise_for_status()
    query_match, elements_match = _QUERY_RE.search(response.text), _ELEMENTS_RE.search(response.text)
    if not query_match or not elements_match:
        raise RuntimeError(f"{path} is not a NiceGUI page")
    query = ast.literal_eval(query_match.group(1))
    return Page(url=str(response.url), query=query, elements=json.loads(elements_match.group(1)))


@dataclass
class Tab:
    """One simulated browser tab connected to a page's socket."""

    base_url: str
    page: Page
    cookies: httpx.Cookies
    sio: socketio.AsyncClient = field(default_factory=lambda: socketio.AsyncClient(reconnection=False))
    bytes_received: int = 0
    listeners: list[Callable[[str], None]] = field(default_factory=list)
    _waiters: dict[str, tuple[asyncio.Future, str]] = field(default_factory=dict)
    seq: int = 0  # the room's latest broadcast taken in, which the page says to the server as message_list.js does
    _acked_seq: int = 0
    _ack_timer: asyncio.TimerHandle | None = None
    last_message_id: int = 0  # the newest message that came live: where a catch-up reads on from
    _list: tuple[str | None, dict[str, Any]] | None = None  # the page's message list (id, element), once found

    async def connect(self) -> None:
        """Connect like the page script: implicit handshake with client id, tab and document ids."""
        query = {
            "client_id": self.page.query["client_id"],
            "next_message_id": str(self.page.query.get("next_message_id", 0)),
            "implicit_handshake": "true",
            "tab_id": str(uuid.uuid4()),
            "document_id": str(uuid.uuid4()),
        }
        self.sio.on("*", self._on_any)
        cookie = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        url = f"{self.base_url}?{httpx.QueryParams(query)}"
        await self.sio.connect(
            url,
            socketio_path="/_nicegui_ws/socket.io",
            transports=["websocket"],
            headers={"Cookie": cookie},
            wait_timeout=30,
        )

    def expect(self, marker: str) -> asyncio.Future:
        """A future resolved with the monotonic time at which `marker` first arrives."""
        future = asyncio.get_running_loop().create_future()
        self._waiters[marker] = (future, marker)
        return future

    async def _on_any(self, event: str, data: Any) -> None:
        await self._record(data)  # first: the arrival time is what the scenarios measure
        if event.startswith("chatapp:") and isinstance(data, dict) and isinstance(data.get("seq"), int):
            for message in data.get("messages", ()):
                self.last_message_id = max(self.last_message_id, message.get("id", 0))
            await self._took(data["seq"])
        elif event == "run_javascript" and isinstance(data, dict) and '"resync"' in data.get("code", ""):
            await self._catch_up()  # the server left this tab out while it was behind, as message_list.js does

    async def _record(self, data: Any) -> None:
        text = json.dumps(data) if not isinstance(data, str) else data
        self.bytes_received += len(text)
        for listener in self.listeners:
            listener(text)
        if not self._waiters:
            return
        now = time.monotonic()
        for key, (future, marker) in list(self._waiters.items()):
            if marker in text and not future.done():
                future.set_result(now)
                del self._waiters[key]

    async def _took(self, seq: int) -> None:
        """What message_list.js does with a broadcast's number: say it every ack_every, or 5 s later."""
        if seq <= self.seq:
            return
        self.seq = seq
        list_id, element = self._message_list()
        if list_id is None:
            return
        if self.seq - self._acked_seq >= element.get("props", {}).get("ack-every", 50):
            await self._ack()
        elif self._ack_timer is None:
            self._ack_timer = asyncio.get_running_loop().call_later(5, lambda: asyncio.ensure_future(self._ack()))

    async def _ack(self) -> None:
        if self._ack_timer is not None:
            self._ack_timer.cancel()
            self._ack_timer = None
        list_id, _ = self._message_list()
        if list_id is not None and self.seq > self._acked_seq and self.sio.connected:
            self._acked_seq = self.seq
            await self.emit_event(list_id, "received", [self.seq])

    async def _catch_up(self) -> None:
        list_id, _ = self._message_list()
        if list_id is not None:
            await self.emit_event(list_id, "catch-up", [{"after": self.last_message_id}])

    def _message_list(self) -> tuple[str | None, dict[str, Any]]:
        if self._list is None:
            self._list = next(
                (
                    (element_id, element)
                    for element_id, element in self.page.elements.items()
                    if any(e.get("type") == "received" for e in element.get("events", []))
                ),
                (None, {}),
            )
        return self._list

    async def emit_event(self, element_id: str, event_type: str, args: list[Any]) -> None:
        """Send a DOM/Vue event of an element, as the page script does."""
        element = self.page.elements[element_id]
        listener = next(e for e in element.get("events", []) if e["type"] == event_type)
        await self.sio.emit(
            "event",
            {
                "id": int(element_id),
                "client_id": self.page.query["client_id"],
                "listener_id": listener["listener_id"],
                "args": [json.dumps(arg) for arg in args],
            },
        )

    async def fill(self, label: str, value: str) -> None:
        """Type a value into the input with that label."""
        element_id, element = self.page.find(label=label)
        event_type = next(e["type"] for e in element["events"] if e["type"].startswith("update:"))
        await self.emit_event(element_id, event_type, [value])

    async def click(self, label: str, *args: Any) -> None:
        """Click the button with that label; `args` are what its JavaScript handler would emit."""
        element_id, _ = self.page.find(label=label)
        await self.emit_event(element_id, "click", list(args) or [{}])

    async def send_message(self, text: str) -> None:
        """What Enter in the room's composer does: its "send" event carries the text."""
        await self.emit_event(self.page.find_tag("nicegui-composer"), "send", [text])

    async def close(self) -> None:
        if self._ack_timer is not None:
            self._ack_timer.cancel()
        await self.sio.disconnect()


async def open_tab(base_url: str, http: httpx.AsyncClient, path: str) -> Tab:
    """Load a page with the client's cookies and connect its socket."""
    tab = Tab(base_url=base_url, page=await load_page(http, path), cookies=http.cookies)
    await tab.connect()
    return tab

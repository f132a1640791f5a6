"""The server side of the message list component."""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from typing import Any

from nicegui import core, ui

from chatapp.domain.models import Message
from chatapp.pages.markdown import render_markdown

DOM_WINDOW = 300

Payload = dict[str, Any]


PAYLOAD_CACHE_SIZE = 8192
_payloads: OrderedDict[Message, Payload] = OrderedDict()  # built once per message, shared by all viewers


def _build_payload(message: Message) -> Payload:
    """What a browser needs to show a message."""
    return {
        "id": message.id,
        "author": message.author_name,
        "kind": message.author_kind.value,
        "ts": message.created_at.isoformat(),
        "html": render_markdown(message.body),
    }


async def payloads_of(messages: list[Message]) -> list[Payload]:
    """Payloads for messages; any not built yet are rendered in a worker thread (markdown can take
    tens of ms), so the live path of a room's second and later viewers costs a dict lookup."""
    found = {m: p for m in messages if (p := _payloads.get(m)) is not None}
    missing = [m for m in messages if m not in found]
    if missing:
        built = await asyncio.to_thread(lambda: [_build_payload(m) for m in missing])
        found.update(zip(missing, built, strict=True))
        _payloads.update(zip(missing, built, strict=True))
        while len(_payloads) > PAYLOAD_CACHE_SIZE:
            _payloads.popitem(last=False)
    return [found[m] for m in messages]


LIVE_EVENT = "chatapp:message"


class _Audience:
    """The tabs of this process that show one room, and the messages already sent to them."""

    def __init__(self) -> None:
        self.clients: set[str] = set()
        self.sent: deque[int] = deque(maxlen=1024)


_audiences: dict[int, _Audience] = {}


async def _broadcast_once(room_id: int, payload: Payload) -> None:
    """One socket.io emit to every tab of the room: the payload is serialised once for all viewers.

    Every tab's watcher hands the same message here; only the first call sends it. A tab that was
    disconnected at that moment asks for what it missed when its socket connects again (catch-up).
    """
    audience = _audiences.get(room_id)
    if audience is None or payload["id"] in audience.sent:
        return
    audience.sent.append(payload["id"])
    await core.sio.emit(LIVE_EVENT, {"room": room_id, "message": payload}, to=list(audience.clients))


class MessageList(ui.element, component="message_list.js"):
    """Holds the room's visible messages as data; the browser renders them (role=log).

    New messages reach the browser through one room-wide socket.io emit (see _broadcast_once), not
    through this element's own updates; the server keeps the newest window of what it showed.
    """

    def __init__(
        self,
        room_id: int,
        payloads: list[Payload],
        *,
        has_older: bool,
        on_load_older: Callable[[int], Awaitable[None]],
        on_catch_up: Callable[[int], Awaitable[None]],
    ) -> None:
        super().__init__()
        self.room_id = room_id
        self._window: list[Payload] = payloads[-DOM_WINDOW:]
        # Initial data only: later changes go through the room broadcast or run_method, never through
        # props (an update of an observable prop would re-send the whole list).
        self._props["messages"] = list(self._window)
        self._props["has-older"] = has_older or len(payloads) > DOM_WINDOW
        self._props["window-size"] = DOM_WINDOW
        self._props["room"] = room_id
        self.on("load-older", lambda e: on_load_older(e.args) if isinstance(e.args, int) else None)
        self.on("catch-up", lambda e: on_catch_up(e.args) if isinstance(e.args, int) else None)
        audience = _audiences.setdefault(room_id, _Audience())
        audience.clients.add(self.client.id)
        self.client.on_delete(self._leave_audience)

    def _leave_audience(self) -> None:
        audience = _audiences.get(self.room_id)
        if audience is None:
            return
        audience.clients.discard(self.client.id)
        if not audience.clients:
            del _audiences[self.room_id]

    @property
    def payloads(self) -> list[Payload]:
        """The newest messages this client has been sent, oldest first (a bounded window)."""
        return self._window

    @property
    def last_id(self) -> int:
        """The id of the newest message sent to this client (0 when none)."""
        return self._window[-1]["id"] if self._window else 0

    def _remember(self, payload: Payload) -> bool:
        if any(p["id"] == payload["id"] for p in self._window[-50:]):
            return False
        self._window.append(payload)
        if len(self._window) > 1 and self._window[-2]["id"] > payload["id"]:
            self._window.sort(key=lambda p: p["id"])
        del self._window[:-DOM_WINDOW]
        return True

    def include(self, payloads: list[Payload]) -> None:
        """Add messages to the initial data, before the page is first sent to the browser."""
        for payload in payloads:
            self._remember(payload)
        self._props["messages"] = list(self._window)

    async def append(self, payload: Payload) -> None:
        """A new live message: shown by every tab of the room through one broadcast."""
        if self._remember(payload):
            await _broadcast_once(self.room_id, payload)

    def catch_up(self, payloads: list[Payload] | None) -> None:
        """Send what this tab missed while it was not connected (None: too much, start over)."""
        if payloads is None:
            self.run_method("restart")
            return
        for payload in payloads:
            self._remember(payload)
        if payloads:
            self.run_method("appendMany", payloads)

    def prepend(self, payloads: list[Payload], *, has_older: bool) -> None:
        """Send a page of older messages to this client (the server keeps only the newest window)."""
        self.run_method("prepend", payloads, has_older)

    def loading_failed(self) -> None:
        """Let the client offer "Load older messages" again."""
        self.run_method("loadFailed")

    def _displayed_contents(self, *, only_visible: bool) -> list:
        return [f"{p['author']}: {p['html']}" for p in self._window]

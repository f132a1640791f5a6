"""The server side of the message list component."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from nicegui import ui

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


class MessageList(ui.element, component="message_list.js"):
    """Holds the room's visible messages as data; the browser renders them (role=log)."""

    def __init__(
        self, payloads: list[Payload], *, has_older: bool, on_load_older: Callable[[int], Awaitable[None]]
    ) -> None:
        super().__init__()
        self._window: list[Payload] = payloads[-DOM_WINDOW:]
        # Initial data only: later changes go through run_method, never through props (an update
        # of an observable prop would re-send the whole list).
        self._props["messages"] = list(self._window)
        self._props["has-older"] = has_older or len(payloads) > DOM_WINDOW
        self._props["window-size"] = DOM_WINDOW
        self.on("load-older", lambda e: on_load_older(e.args) if isinstance(e.args, int) else None)

    @property
    def payloads(self) -> list[Payload]:
        """The newest messages this client has been sent, oldest first (a bounded window)."""
        return self._window

    @property
    def last_id(self) -> int:
        """The id of the newest message sent to this client (0 when none)."""
        return self._window[-1]["id"] if self._window else 0

    def append(self, payload: Payload) -> None:
        """Send one new message to this client; never re-sends the list."""
        if any(p["id"] == payload["id"] for p in self._window[-50:]):
            return
        self._window.append(payload)
        del self._window[:-DOM_WINDOW]
        self.run_method("append", payload)

    def prepend(self, payloads: list[Payload], *, has_older: bool) -> None:
        """Send a page of older messages to this client (the server keeps only the newest window)."""
        self.run_method("prepend", payloads, has_older)

    def loading_failed(self) -> None:
        """Let the client offer "Load older messages" again."""
        self.run_method("loadFailed")

    def _displayed_contents(self, *, only_visible: bool) -> list:
        return [f"{p['author']}: {p['html']}" for p in self._window]

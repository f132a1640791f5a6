"""The server side of the message list component."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Any

from nicegui import ui

from chatapp.domain.models import Message
from chatapp.pages.markdown import render_markdown

DOM_WINDOW = 300


@lru_cache(maxsize=8192)
def message_payload(message: Message) -> dict[str, Any]:
    """What a browser needs to show a message; built once per message, shared by all viewers."""
    return {
        "id": message.id,
        "author": message.author_name,
        "kind": message.author_kind.value,
        "ts": message.created_at.isoformat(),
        "html": render_markdown(message.body),
    }


class MessageList(ui.element, component="message_list.js"):
    """Holds the room's visible messages as data; the browser renders them (role=log)."""

    def __init__(
        self, messages: list[Message], *, has_older: bool, on_load_older: Callable[[int], Awaitable[None]]
    ) -> None:
        super().__init__()
        self._window: list[dict[str, Any]] = [message_payload(m) for m in messages]
        # Initial data only: later changes go through run_method, never through props (an update
        # of an observable prop would re-send the whole list).
        self._props["messages"] = self._window
        self._props["has-older"] = has_older
        self._props["window-size"] = DOM_WINDOW
        self.on("load-older", lambda e: on_load_older(e.args) if isinstance(e.args, int) else None)

    @property
    def payloads(self) -> list[dict[str, Any]]:
        """The messages this client has been sent, oldest first (a bounded window)."""
        return self._window

    def append(self, message: Message) -> None:
        """Send one new message to this client; never re-sends the list."""
        payload = message_payload(message)
        if any(p["id"] == payload["id"] for p in self.payloads[-20:]):
            return
        self.payloads.append(payload)
        del self.payloads[:-DOM_WINDOW]
        self.run_method("append", payload)

    def prepend(self, messages: list[Message], *, has_older: bool) -> None:
        """Send a page of older messages to this client."""
        older = [message_payload(m) for m in messages]
        self.payloads[:0] = older
        self.run_method("prepend", older, has_older)

    def _displayed_contents(self, *, only_visible: bool) -> list:
        return [f"{p['author']}: {p['html']}" for p in self.payloads]

"""The server side of the message list component."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from nicegui import ui

from chatapp.live.catch_up import read_catch_up_request
from chatapp.live.payloads import Payload, epoch_ms
from chatapp.live.wire import EVENT_NAMES

DOM_WINDOW = 300


class MessageList(
    ui.element,
    component="message_list.js",
    # the component's modules, imported by their bare names (NiceGUI puts them in the page's import map)
    dependencies=["message_ai.js", "message_live.js", "message_row.js", "message_scroll.js"],
):
    """Holds the room's visible messages as data; the browser renders them (role=log).

    New messages reach the browser through the room feed's one broadcast (live/hub.py), not
    through this element's updates; the feed records here what it sent to this tab.
    """

    def __init__(
        self,
        room_id: int,
        payloads: list[Payload],
        *,
        has_older: bool,
        on_load_older: Callable[[int], Awaitable[None]],
        on_catch_up: Callable[[int, datetime | None], Awaitable[None]],
        on_stop_ai: Callable[[], Awaitable[None]] | None = None,
        on_regenerate_ai: Callable[[], Awaitable[None]] | None = None,
        ai_name: str = "Assistant",
        ai_running: dict[str, object] | None = None,
        can_act: bool = False,
        me: int = 0,
        can_moderate: bool = False,
        on_delete: Callable[[int], Awaitable[None]] | None = None,
        synced_at: datetime | None = None,
        on_received: Callable[[int], None] | None = None,
        ack_every: int = 50,
    ) -> None:
        super().__init__()
        # De-duplicated: a message committed while the page was built is in the history and in the
        # feed's buffer of what arrived meanwhile.
        self._window: list[Payload] = []
        self._merge(payloads)
        self._send_window(room_id, has_older=has_older or len(payloads) > DOM_WINDOW)
        # The page says which of the room's broadcasts it has taken in: every `ack_every`, or a moment
        # after the last (live/flow.py leaves a tab too far behind out).
        self._props["ack-every"] = ack_every
        self._props["synced-at"] = epoch_ms(synced_at or datetime.now(UTC))  # news up to here is in the page
        self._listen_for_news(on_received, on_load_older, on_catch_up)
        self._props["ai-name"] = ai_name
        self._props["ai-running"] = ai_running  # a reply in progress when the page was built: its text so far
        self._props["can-act"] = can_act  # may stop and regenerate the AI's replies (a participant)
        self._props["me"] = me  # the viewer's participant id: they may delete their own messages
        self._props["can-moderate"] = can_moderate  # ...and owners and moderators anyone's
        self._listen_for_actions(on_delete, on_stop_ai, on_regenerate_ai)

    def _send_window(self, room_id: int, *, has_older: bool) -> None:
        # Initial data only: later changes go through the room broadcast or run_method, never through
        # props (an update of an observable prop would re-send the whole list).
        self._props["messages"] = list(self._window)
        self._props["has-older"] = has_older
        self._props["window-size"] = DOM_WINDOW
        self._props["room"] = room_id
        self._props["events"] = EVENT_NAMES  # the live events' names, said once (chatapp/live/wire.py)

    def _listen_for_news(
        self,
        on_received: Callable[[int], None] | None,
        on_load_older: Callable[[int], Awaitable[None]],
        on_catch_up: Callable[[int, datetime | None], Awaitable[None]],
    ) -> None:
        if on_received is not None:
            self.on("received", lambda e: on_received(e.args) if type(e.args) is int else None)
        self.on("load-older", lambda e: on_load_older(e.args) if isinstance(e.args, int) else None)
        self.on("catch-up", lambda e: on_catch_up(*request) if (request := read_catch_up_request(e.args)) else None)

    def _listen_for_actions(
        self,
        on_delete: Callable[[int], Awaitable[None]] | None,
        on_stop_ai: Callable[[], Awaitable[None]] | None,
        on_regenerate_ai: Callable[[], Awaitable[None]] | None,
    ) -> None:
        if on_delete is not None:
            self.on("delete-message", lambda e: on_delete(e.args) if isinstance(e.args, int) else None)
        if on_stop_ai is not None:
            self.on("stop-ai", lambda _: on_stop_ai())
        if on_regenerate_ai is not None:
            self.on("regenerate-ai", lambda _: on_regenerate_ai())

    @property
    def payloads(self) -> list[Payload]:
        """What this tab was sent, oldest first: its first page, live messages and catch-ups (the
        newest DOM_WINDOW of them)."""
        return list(self._window)

    def record(self, payloads: list[Payload]) -> None:
        """Note messages sent to this tab by its room's broadcast (the browser got them from there)."""
        self._merge(payloads)

    def _merge(self, payloads: list[Payload]) -> None:
        if self._window and all(p["id"] > self._window[-1]["id"] for p in payloads):
            self._window.extend(payloads)  # the usual case: newer messages, in order
        else:
            self._window = sorted({p["id"]: p for p in [*self._window, *payloads]}.values(), key=lambda p: p["id"])
        del self._window[:-DOM_WINDOW]

    def forget(self, message_id: int) -> None:
        """A message was deleted (the room's broadcast removed it from the browser)."""
        self._window = [p for p in self._window if p["id"] != message_id]

    def catch_up(self, payloads: list[Payload], deleted_ids: list[int], *, synced_at: datetime) -> None:
        """Send what this tab missed while it was not connected: new and edited messages (an edited
        one replaces the tab's copy), the ids of deleted ones, and the server time it is now up to."""
        oldest = self._window[0]["id"] if self._window else 0
        kept = [p for p in payloads if p["id"] >= oldest]  # this record holds the newest window only
        if kept:
            self._merge(kept)
        for message_id in deleted_ids:  # after the merge: a message deleted meanwhile stays out
            self.forget(message_id)
        self.run_method("catchUp", payloads, deleted_ids, epoch_ms(synced_at))

    def reset(self, payloads: list[Payload], *, has_older: bool, synced_at: datetime) -> None:
        """Too much was missed: show the newest page instead of the list (the composer is untouched)."""
        self._window = list(payloads[-DOM_WINDOW:])
        self.run_method("reset", payloads, has_older, epoch_ms(synced_at))

    def prepend(self, payloads: list[Payload], *, has_older: bool) -> None:
        """Send a page of older messages to this client (the server keeps only the newest window)."""
        self.run_method("prepend", payloads, has_older)

    def loading_failed(self) -> None:
        """Let the client offer "Load older messages" again."""
        self.run_method("loadFailed")

    def _displayed_contents(self, *, only_visible: bool) -> list:
        return [f"{p['author']}{' (guest)' if p['kind'] == 'guest' else ''}: {p['html']}" for p in self.payloads]

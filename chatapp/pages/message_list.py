"""The server side of the message list component."""

from __future__ import annotations

import asyncio
import math
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from nicegui import ui

from chatapp.domain.models import Message
from chatapp.pages.markdown import markdown_cost, render_markdown

DOM_WINDOW = 300

Payload = dict[str, Any]


PAYLOAD_CACHE_SIZE = 8192
_payloads: OrderedDict[Message, Payload] = OrderedDict()  # built once per message, shared by all viewers
# Renders under way, by message: every request needing one awaits the same task. The task (not the
# request) fills _payloads, so a request abandoned meanwhile (NiceGUI cancels a page not built in 3 s)
# does not make the next one render again.
_rendering: dict[Message, asyncio.Task[dict[Message, Payload]]] = {}


def _build_payload(message: Message) -> Payload:
    """What a browser needs to show a message."""
    return {
        "id": message.id,
        "pid": message.participant_id,
        "author": message.author_name,
        "kind": message.author_kind.value,
        "ts": message.created_at.isoformat(),
        "html": render_markdown(message.body),
        "status": message.status.value,  # an AI reply can be "stopped" or "failed" part-way
        "edited": message.edited_at.isoformat() if message.edited_at else None,  # a regenerated reply
    }


INLINE_RENDER_MAX_CHARS = 2000  # a short message without code blocks renders in ~0.1-0.3 ms
INLINE_RENDER_MAX_COST = 1000  # markdown_cost's estimated us: at most ~1 ms on the loop


def _renders_quickly(message: Message) -> bool:
    """Short, cheap prose: rendering it on the loop costs less than a hop to a worker thread."""
    body = message.body
    return (
        len(body) <= INLINE_RENDER_MAX_CHARS
        and "```" not in body
        and "~~~" not in body
        and markdown_cost(body) <= INLINE_RENDER_MAX_COST
    )


def _remember(built: dict[Message, Payload]) -> None:
    """Cache payloads, forgetting the oldest beyond PAYLOAD_CACHE_SIZE."""
    _payloads.update(built)
    while len(_payloads) > PAYLOAD_CACHE_SIZE:
        _payloads.popitem(last=False)


def _start_rendering(messages: list[Message]) -> None:
    """Render messages in a worker thread; the result goes to the cache whoever still waits for it."""
    task = asyncio.get_running_loop().create_task(asyncio.to_thread(lambda: {m: _build_payload(m) for m in messages}))
    for message in messages:
        _rendering[message] = task

    def finished(_: asyncio.Task) -> None:  # runs before the awaiting requests resume
        for message in messages:
            if _rendering.get(message) is task:
                del _rendering[message]
        if not task.cancelled() and task.exception() is None:
            _remember(task.result())

    task.add_done_callback(finished)


async def payloads_of(messages: list[Message]) -> list[Payload]:
    """Payloads for messages, built once per message and shared by every viewer.

    A single short, cheap message (the live path) renders on the loop; anything else, such as code blocks
    (Pygments can take milliseconds) or a page of history, renders in a worker thread, once, however
    many requests ask for it meanwhile and whether or not they wait for the end.
    """
    found = {m: p for m in messages if (p := _payloads.get(m)) is not None}
    missing = [m for m in dict.fromkeys(messages) if m not in found]
    if len(missing) == 1 and missing[0] not in _rendering and _renders_quickly(missing[0]):
        found[missing[0]] = _build_payload(missing[0])
        _remember({missing[0]: found[missing[0]]})
    elif missing:
        if new := [m for m in missing if m not in _rendering]:
            _start_rendering(new)
        for task in {_rendering[m] for m in missing}:
            built = await asyncio.shield(task)
            found.update((m, built[m]) for m in missing if m in built)
    return [found[m] for m in messages]


def epoch_ms(moment: datetime) -> int:
    """A server time as the browser holds it: milliseconds since the epoch."""
    return round(moment.timestamp() * 1000)


def read_catch_up_request(args: Any) -> tuple[int, datetime | None] | None:
    """The browser's catch-up request: the id to read on from and the server time it has news up to."""
    if isinstance(args, int) and not isinstance(args, bool):
        return args, None  # a page script from before the time was sent
    if not isinstance(args, dict) or not isinstance(args.get("after"), int) or isinstance(args["after"], bool):
        return None
    since = args.get("since")
    if isinstance(since, int | float) and not isinstance(since, bool) and math.isfinite(since) and since >= 0:
        return args["after"], datetime.fromtimestamp(min(since, 2**42) / 1000, UTC)
    return args["after"], None


class MessageList(ui.element, component="message_list.js"):
    """Holds the room's visible messages as data; the browser renders them (role=log).

    New messages reach the browser through the room feed's one broadcast (pages/room_feed.py), not
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
        # Initial data only: later changes go through the room broadcast or run_method, never through
        # props (an update of an observable prop would re-send the whole list).
        self._props["messages"] = list(self._window)
        self._props["has-older"] = has_older or len(payloads) > DOM_WINDOW
        self._props["window-size"] = DOM_WINDOW
        self._props["room"] = room_id
        # The page says which of the room's broadcasts it has taken in: every `ack_every`, or a moment
        # after the last (room_feed.py leaves a tab too far behind out).
        self._props["ack-every"] = ack_every
        if on_received is not None:
            self.on("received", lambda e: on_received(e.args) if type(e.args) is int else None)
        self.on("load-older", lambda e: on_load_older(e.args) if isinstance(e.args, int) else None)
        self._props["synced-at"] = epoch_ms(synced_at or datetime.now(UTC))  # news up to here is in the page
        self.on("catch-up", lambda e: on_catch_up(*request) if (request := read_catch_up_request(e.args)) else None)
        self._props["ai-name"] = ai_name
        self._props["ai-running"] = ai_running  # a reply in progress when the page was built: its text so far
        self._props["can-act"] = can_act  # may stop and regenerate the AI's replies (a participant)
        self._props["me"] = me  # the viewer's participant id: they may delete their own messages
        self._props["can-moderate"] = can_moderate  # ...and owners and moderators anyone's
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

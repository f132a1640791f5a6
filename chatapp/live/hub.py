"""One hub per room per process and transport: a room's live news is prepared once and sent once to all
of its subscribers (the browser tabs of pages/, the room sockets of api/).

The domain's LiveRooms hands each event to the room's hub once (every subscriber registers the same
hub, each after its own authorisation). The hub renders a message's payload once and makes one send
addressed to every subscriber, so it is serialised once whatever the number of viewers. In a busy room
the messages of one short interval share a send (FLUSH_INTERVAL_S), and the AI's text is merged to a
few sends a second. Each send is numbered for flow control (live/flow.py). A subscriber that was
disconnected asks for what it missed when it connects again (live/catch_up.py).

The transport is a function: send(event, data, subscriber_ids). No NiceGUI here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from functools import partial
from typing import Any, Protocol

from chatapp.domain.events import AiReplyDelta, AiReplyStarted, Event
from chatapp.domain.models import Message, Participant, Room
from chatapp.live.flow import MAX_BACKLOG, FlowControl
from chatapp.live.payloads import Payload, epoch_ms, payloads_of
from chatapp.live.wire import AI_EVENT, DELETED_EVENT, MESSAGES_EVENT, ai_event_data

log = logging.getLogger(__name__)

# A busy room sends at most one message send per interval, carrying every message of that interval:
# each costs a socket write per subscriber, so 20 posters in a room of 20 tabs would otherwise cost 400
# writes per round of messages. A message into a quiet room is sent at once.
FLUSH_INTERVAL_S = 0.02
# The AI's text reaches a room at most this often: about 10 times a second, as the domain publishes it,
# and about 3 times a second in rooms with more than BIG_ROOM subscribers in this hub, where each delta
# costs a socket write per subscriber (bench/ai_stream.py: 200 viewers took 36% of a core at 10 deltas
# a second, 22% at 4). The first text of a reply goes out at once either way. A delta carries only the
# room and the new text: it belongs to the reply that the last "started" announced.
AI_DELTA_INTERVAL_S = 0.1
AI_DELTA_INTERVAL_BIG_ROOM_S = 0.3
BIG_ROOM = 50

Send = Callable[[str, dict[str, Any], list[str]], Awaitable[None]]


class Subscriber(Protocol):
    """What a hub needs of one subscriber (a tab's room view, a socket's channel)."""

    client_id: str
    ready: bool  # False while it is still being set up (it then buffers in `pending`)
    pending: list[Payload]

    @property
    def connected(self) -> bool: ...  # it answers flow control (a page simulated in tests never does)

    def delivered(self, payloads: list[Payload]) -> None: ...
    def forget(self, message_id: int) -> None: ...
    def resync(self, since: datetime | None = None) -> None: ...  # since: news saved from then may be missing
    def participant_id(self) -> int | None: ...
    def left_room(self, *, reason: str) -> None: ...
    async def load_people(self) -> list[Participant] | None: ...
    async def load_room(self) -> Room | None: ...
    def show_room(self, room: Room) -> None: ...
    def show_people(self, people: list[Participant]) -> None: ...


class RoomHub:
    """The subscribers of this process that follow one room; a RoomWatcher of the domain's live feed."""

    def __init__(
        self, room_id: int, send: Send, on_empty: Callable[[RoomHub], None], *, max_backlog: int = MAX_BACKLOG
    ) -> None:
        self.room_id = room_id
        self.tabs: dict[str, Subscriber] = {}
        self._send = send
        self._on_empty = on_empty
        self.flow = FlowControl(room_id, max_backlog=max_backlog)
        self._outbox: list[Payload] = []
        self._last_flush = float("-inf")
        self._flush_timer: asyncio.TimerHandle | None = None
        self._ai_unsent: AiReplyDelta | None = None  # AI text not sent yet (a big room's deltas are merged)
        self._ai_sent_at = float("-inf")
        self._ai_timer: asyncio.TimerHandle | None = None

    def add(self, tab: Subscriber) -> Callable[[], None]:
        """Include the subscriber in every send; returns the function that removes it."""
        self.tabs[tab.client_id] = tab
        self.flow.add(tab.client_id)

        def remove() -> None:
            if self.tabs.get(tab.client_id) is tab:
                del self.tabs[tab.client_id]
                self.flow.discard(tab.client_id)
                if not self.tabs:
                    self._on_empty(self)

        return remove

    def received(self, client_id: str, seq: int) -> None:
        """The subscriber has taken in the sends up to `seq`; one that was left out and has now taken in
        all it was sent is included again and asked to catch up."""
        if client_id in self.tabs and self.flow.received(client_id, seq):
            _each_tab(self.tabs[client_id].resync)

    def caught_up(self, client_id: str) -> None:
        """The subscriber is reading what it missed from the database: sent to again, owing nothing."""
        self.flow.caught_up(client_id)

    def _ready_tabs(self) -> list[Subscriber]:
        """The subscribers to send to: set up, and not too far behind with what they were sent."""
        return [t for t in self.tabs.values() if t.ready and self.flow.keeps_up(t.client_id, counts=t.connected)]

    async def _broadcast(self, event: str, data: dict[str, Any], tabs: list[Subscriber]) -> None:
        """One send to the subscribers, numbered."""
        ids = [tab.client_id for tab in tabs]
        await self._send(event, {**data, "seq": self.flow.number(ids)}, ids)

    async def on_message(self, message: Message) -> None:
        (payload,) = await payloads_of([message])
        for tab in self.tabs.values():
            if not tab.ready:
                tab.pending.append(payload)
        self._outbox.append(payload)
        wait = self._last_flush + FLUSH_INTERVAL_S - time.monotonic()
        if wait <= 0:
            await self._flush()  # a quiet room: sent at once
        elif self._flush_timer is None:  # a busy room: what arrives within the interval goes in one send
            self._flush_timer = asyncio.get_running_loop().call_later(wait, self._flush_soon)

    def _flush_soon(self) -> None:
        self._flush_timer = None
        spawn(self._flush(), name=f"room {self.room_id} live flush")

    async def _flush(self) -> None:
        self._last_flush = time.monotonic()
        batch, self._outbox = self._outbox, []
        ready = self._ready_tabs()
        if batch and ready:
            for tab in ready:
                tab.delivered(batch)
            await self._broadcast(MESSAGES_EVENT, {"room": self.room_id, "messages": batch}, ready)

    async def on_ai_event(self, event: Event) -> None:
        """The AI's reply started, grew, ended, or the room gets a notice: one send to every subscriber."""
        if isinstance(event, AiReplyDelta):
            await self._on_ai_delta(event)
            return
        await self._flush_ai()  # text still waiting goes before whatever comes next
        if isinstance(event, AiReplyStarted):
            self._ai_sent_at = float("-inf")
        elif self._outbox:
            await self._flush()  # the saved reply goes out before the streaming row is taken away
        await self._emit_ai(event)

    async def _on_ai_delta(self, delta: AiReplyDelta) -> None:
        unsent = self._ai_unsent
        if unsent is not None and unsent.reply_id == delta.reply_id:
            delta = AiReplyDelta(room_id=delta.room_id, reply_id=delta.reply_id, text=unsent.text + delta.text)
        self._ai_unsent = delta
        interval = AI_DELTA_INTERVAL_BIG_ROOM_S if len(self.tabs) > BIG_ROOM else AI_DELTA_INTERVAL_S
        wait = self._ai_sent_at + interval - time.monotonic()
        if wait <= 0:
            await self._flush_ai()
        elif self._ai_timer is None:
            self._ai_timer = asyncio.get_running_loop().call_later(wait, self._flush_ai_soon)

    def _flush_ai_soon(self) -> None:
        self._ai_timer = None
        spawn(self._flush_ai(), name=f"room {self.room_id} AI text")

    async def _flush_ai(self) -> None:
        if self._ai_timer is not None:
            self._ai_timer.cancel()
            self._ai_timer = None
        delta, self._ai_unsent = self._ai_unsent, None
        if delta is not None:
            self._ai_sent_at = time.monotonic()
            await self._emit_ai(delta)

    async def _emit_ai(self, event: Event) -> None:
        ready = self._ready_tabs()
        if ready:
            await self._broadcast(AI_EVENT, ai_event_data(self.room_id, event), ready)

    async def on_message_deleted(self, message_id: int, deleted_at: datetime | None = None) -> None:
        """A message was deleted: it goes from every screen in one send."""
        self._outbox = [p for p in self._outbox if p["id"] != message_id]
        for tab in self.tabs.values():
            tab.pending[:] = [p for p in tab.pending if p["id"] != message_id]
            tab.forget(message_id)
        ready = self._ready_tabs()
        if ready:
            at = epoch_ms(deleted_at) if deleted_at else 0
            await self._broadcast(DELETED_EVENT, {"room": self.room_id, "id": message_id, "at": at}, ready)

    async def on_participant_removed(self, participant_id: int, *, left: bool) -> None:
        """Someone was removed (or left): their subscribers stop receiving the room and leave at once."""
        for tab in [t for t in self.tabs.values() if t.participant_id() == participant_id]:
            tab.left_room(reason="you" if left else "removed")

    async def on_gap(self, since: datetime | None) -> None:
        """This process may have missed the room's news saved since `since`: every subscriber asks for
        what it missed (as after a reconnect), and the room and its people are read again."""
        for tab in list(self.tabs.values()):
            _each_tab(tab.resync, since)
        await self.on_room_changed()
        await self.on_participants_changed()

    async def on_room_deleted(self) -> None:
        """The room is gone: every subscriber leaves it."""
        for tab in list(self.tabs.values()):
            _each_tab(partial(tab.left_room, reason="deleted"))

    async def on_room_changed(self) -> None:
        """The room's settings changed: read the room once and let every subscriber show what its
        person may now do."""
        await self._read_once_then_show(lambda tab: tab.load_room(), lambda tab, room: tab.show_room(room))

    async def on_participants_changed(self) -> None:
        """Read the participants once and show them to every subscriber."""
        await self._read_once_then_show(lambda tab: tab.load_people(), lambda tab, people: tab.show_people(people))

    async def _read_once_then_show(
        self, load: Callable[[Subscriber], Awaitable[Any]], show: Callable[[Subscriber, Any], None]
    ) -> None:
        """Read as the first subscriber that still may (None: it may not), then show it to every one still
        here (one can go while the hub awaited the database)."""
        tabs = list(self.tabs.values())
        for tab in tabs:
            value = await load(tab)
            if value is not None:
                break
        else:
            return
        for tab in [t for t in tabs if self.tabs.get(t.client_id) is t]:
            _each_tab(show, tab, value)


def _each_tab(show: Callable[..., None], *args: Any) -> None:
    """Show something to one subscriber; one that fails (its page being torn down) does not stop the others."""
    try:
        show(*args)
    except Exception:
        log.exception("updating a tab failed")


class RoomHubs:
    """The hubs of one transport in one running app, by room id (a hub is dropped when its last
    subscriber goes)."""

    def __init__(self, send: Send, *, max_backlog: int = MAX_BACKLOG) -> None:
        self._hubs: dict[int, RoomHub] = {}
        self._send = send
        self._max_backlog = max_backlog

    def hub_for(self, room_id: int) -> RoomHub:
        """The room's hub in this process, created on first use."""
        hub = self._hubs.get(room_id)
        if hub is None:
            hub = self._hubs[room_id] = RoomHub(room_id, self._send, self._drop, max_backlog=self._max_backlog)
        return hub

    def _drop(self, hub: RoomHub) -> None:
        if self._hubs.get(hub.room_id) is hub:
            del self._hubs[hub.room_id]


_running: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks


def spawn(work: Coroutine[Any, Any, None], *, name: str) -> None:
    """Run `work` in the background, kept alive until it ends; a failure is logged, not lost."""
    task = asyncio.get_running_loop().create_task(work, name=name)
    _running.add(task)
    task.add_done_callback(_finished)


def _finished(task: asyncio.Task[None]) -> None:
    _running.discard(task)
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("%s failed", task.get_name(), exc_info=error)

"""One live feed per room per process: a message is prepared and sent once for all of the room's tabs.

The domain's LiveRooms hands each new message to the room's feed once (every tab registers the same
feed, each after its own authorisation). The feed renders the payload once and makes one socket.io
emit addressed to every tab of the room, so the payload is serialised once whatever the number of
viewers; per-tab work on the live path is only the socket write. In a busy room, the messages of
one short interval share an emit (FLUSH_INTERVAL_S). A tab that was disconnected at that
moment asks for what it missed when its socket connects again (MessageList's catch-up).

Every broadcast carries the feed's sequence number and each page says, now and then, up to which
one it has taken in ("received"). A tab more than `max_backlog` broadcasts behind (a phone on a bad
link, a frozen laptop) is left out instead of being fed an endless queue: between python-socketio's
queue, uvicorn's write buffer and the kernel nothing bounds what waits for a slow socket, and the
ping queued behind it times out, dropping the socket with everything it held. As soon as the tab says
it has taken in what it was sent, or its socket connects again and it asks to catch up, it is
included again and gets what it missed from the database.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial
from typing import Any, Protocol

from nicegui import background_tasks, core

from chatapp.domain.events import AiReplyDelta, AiReplyStarted, Event
from chatapp.domain.models import Message, Participant, Room
from chatapp.live.payloads import Payload, epoch_ms, payloads_of
from chatapp.live.wire import AI_EVENT, DELETED_EVENT, MESSAGES_EVENT, ai_event_data

log = logging.getLogger(__name__)

# A busy room sends at most one live emit per interval, carrying every message of that interval: each
# emit costs a socket write per tab, so 20 posters in a room of 20 tabs would otherwise cost 400
# writes per round of messages. A message into a quiet room is sent at once.
FLUSH_INTERVAL_S = 0.02
# The AI's text reaches a room at most this often: about 10 times a second, as the domain publishes it,
# and about 3 times a second in rooms watched by more than BIG_ROOM_TABS tabs of this process, where
# each delta costs a socket write per tab (bench/ai_stream.py: 200 viewers took 36% of a core at 10
# deltas a second, 22% at 4). The first text of a reply goes out at once either way. A delta carries
# only the room and the new text: it belongs to the reply that the last "started" announced.
AI_DELTA_INTERVAL_S = 0.1
AI_DELTA_INTERVAL_BIG_ROOM_S = 0.3
BIG_ROOM_TABS = 50
MAX_BACKLOG = 200  # broadcasts a tab may be behind: the default of CHATAPP_LIVE_MAX_BACKLOG


class FeedTab(Protocol):
    """What a feed needs of a tab's room view."""

    client_id: str
    ready: bool  # False while its page is still being built (it then buffers in `pending`)
    pending: list[Payload]

    @property
    def connected(self) -> bool: ...  # its socket is connected (a page simulated in tests never has one)

    def delivered(self, payloads: list[Payload]) -> None: ...
    def forget(self, message_id: int) -> None: ...
    def resync(self) -> None: ...
    def participant_id(self) -> int | None: ...
    def left_room(self, *, reason: str) -> None: ...
    async def load_people(self) -> list[Participant] | None: ...
    async def load_room(self) -> Room | None: ...
    def show_room(self, room: Room) -> None: ...
    def show_people(self, people: list[Participant]) -> None: ...


class RoomFeed:
    """The tabs of this process that show one room; a RoomWatcher of the domain's live feed."""

    def __init__(
        self,
        room_id: int,
        on_empty: Callable[[RoomFeed], None],
        *,
        max_backlog: int = MAX_BACKLOG,
    ) -> None:
        self.room_id = room_id
        self.tabs: dict[str, FeedTab] = {}
        self._on_empty = on_empty
        self.max_backlog = max_backlog
        self._seq = 0  # broadcasts made
        self._sent: dict[str, int] = {}  # by client id: the last broadcast sent to the tab...
        self._received: dict[str, int] = {}  # ...and the last it said it has taken in
        self._behind: set[str] = set()  # tabs left out of the broadcasts until they catch up
        self._outbox: list[Payload] = []
        self._last_flush = float("-inf")
        self._flush_timer: asyncio.TimerHandle | None = None
        self._ai_unsent: AiReplyDelta | None = None  # AI text not sent yet (a big room's deltas are merged)
        self._ai_sent_at = float("-inf")
        self._ai_timer: asyncio.TimerHandle | None = None

    def add(self, tab: FeedTab) -> Callable[[], None]:
        """Include the tab in every broadcast; returns the function that removes it."""
        self.tabs[tab.client_id] = tab
        self._sent[tab.client_id] = self._received[tab.client_id] = 0

        def remove() -> None:
            if self.tabs.get(tab.client_id) is tab:
                del self.tabs[tab.client_id]
                self._sent.pop(tab.client_id, None)
                self._received.pop(tab.client_id, None)
                self._behind.discard(tab.client_id)
                if not self.tabs:
                    self._on_empty(self)

        return remove

    async def on_message(self, message: Message) -> None:
        (payload,) = await payloads_of([message])
        for tab in self.tabs.values():
            if not tab.ready:
                tab.pending.append(payload)
        self._outbox.append(payload)
        wait = self._last_flush + FLUSH_INTERVAL_S - time.monotonic()
        if wait <= 0:
            await self._flush()  # a quiet room: sent at once
        elif self._flush_timer is None:  # a busy room: what arrives within the interval goes in one emit
            self._flush_timer = asyncio.get_running_loop().call_later(wait, self._flush_soon)

    def _flush_soon(self) -> None:
        self._flush_timer = None
        background_tasks.create(self._flush(), name=f"room {self.room_id} live flush")

    def _ready_tabs(self) -> list[FeedTab]:
        """The tabs to broadcast to: built, and not too far behind with what they were sent."""
        keeping_up = []
        for tab in self.tabs.values():
            if not tab.ready or tab.client_id in self._behind:
                continue
            if tab.connected and self._sent[tab.client_id] - self._received[tab.client_id] >= self.max_backlog:
                log.info(
                    "room %s: a tab is %s broadcasts behind; left out until it catches up",
                    self.room_id,
                    self.max_backlog,
                )
                self._behind.add(tab.client_id)
            else:
                keeping_up.append(tab)
        return keeping_up

    def received(self, client_id: str, seq: int) -> None:
        """The tab says it has taken in the broadcasts up to `seq`. One that was left out and has now taken
        in all it was sent is included again and asked to catch up."""
        if client_id not in self.tabs or seq <= self._received[client_id]:
            return
        self._received[client_id] = min(seq, self._sent[client_id])
        if client_id in self._behind and self._received[client_id] == self._sent[client_id]:
            self._behind.discard(client_id)
            _each_tab(self.tabs[client_id].resync)

    def caught_up(self, client_id: str) -> None:
        """The tab is reading what it missed from the database (its socket connected again, or it was
        asked to): it is broadcast to again from now on, owing nothing."""
        if client_id in self.tabs:
            self._received[client_id] = self._sent[client_id]
            self._behind.discard(client_id)

    async def _broadcast(self, event: str, data: dict[str, Any], tabs: list[FeedTab]) -> None:
        """One emit to the tabs, numbered."""
        self._seq += 1
        for tab in tabs:
            self._sent[tab.client_id] = self._seq
        await core.sio.emit(event, {**data, "seq": self._seq}, to=[tab.client_id for tab in tabs])

    async def _flush(self) -> None:
        self._last_flush = time.monotonic()
        batch, self._outbox = self._outbox, []
        ready = self._ready_tabs()
        if batch and ready:
            for tab in ready:
                tab.delivered(batch)
            await self._broadcast(MESSAGES_EVENT, {"room": self.room_id, "messages": batch}, ready)

    async def on_ai_event(self, event: Event) -> None:
        """The AI's reply started, grew, ended, or the room gets a notice: one emit to every tab."""
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
        interval = AI_DELTA_INTERVAL_BIG_ROOM_S if len(self.tabs) > BIG_ROOM_TABS else AI_DELTA_INTERVAL_S
        wait = self._ai_sent_at + interval - time.monotonic()
        if wait <= 0:
            await self._flush_ai()
        elif self._ai_timer is None:
            self._ai_timer = asyncio.get_running_loop().call_later(wait, self._flush_ai_soon)

    def _flush_ai_soon(self) -> None:
        self._ai_timer = None
        background_tasks.create(self._flush_ai(), name=f"room {self.room_id} AI text")

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
        """A message was deleted: it goes from every tab's screen in one emit."""
        self._outbox = [p for p in self._outbox if p["id"] != message_id]
        for tab in self.tabs.values():
            tab.pending[:] = [p for p in tab.pending if p["id"] != message_id]
            tab.forget(message_id)
        ready = self._ready_tabs()
        if ready:
            at = epoch_ms(deleted_at) if deleted_at else 0
            await self._broadcast(DELETED_EVENT, {"room": self.room_id, "id": message_id, "at": at}, ready)

    async def on_participant_removed(self, participant_id: int, *, left: bool) -> None:
        """Someone was removed (or left): their tabs of this room stop receiving it and leave at once."""
        for tab in [t for t in self.tabs.values() if t.participant_id() == participant_id]:
            tab.left_room(reason="you" if left else "removed")

    async def on_room_deleted(self) -> None:
        """The room is gone: every tab of it leaves for the lobby."""
        for tab in list(self.tabs.values()):
            _each_tab(partial(tab.left_room, reason="deleted"))

    async def on_room_changed(self) -> None:
        """The room's settings changed: read the room once and let every tab show what its person may
        now do."""
        await self._read_once_then_show(lambda tab: tab.load_room(), lambda tab, room: tab.show_room(room))

    async def on_participants_changed(self) -> None:
        """Read the participants once and show them in every tab."""
        await self._read_once_then_show(lambda tab: tab.load_people(), lambda tab, people: tab.show_people(people))

    async def _read_once_then_show(
        self, load: Callable[[FeedTab], Awaitable[Any]], show: Callable[[FeedTab, Any], None]
    ) -> None:
        """Read as the first tab that still may (None: it may not), then show it in every tab still open."""
        tabs = list(self.tabs.values())
        for tab in tabs:
            value = await load(tab)
            if value is not None:
                break
        else:
            return
        for tab in self._still_open(tabs):
            _each_tab(show, tab, value)

    def _still_open(self, tabs: list[FeedTab]) -> list[FeedTab]:
        """Those of `tabs` still in the feed (a tab can close while the feed awaited the database)."""
        return [tab for tab in tabs if self.tabs.get(tab.client_id) is tab]


def _each_tab(show: Callable[..., None], *args: Any) -> None:
    """Show something in one tab; a tab that fails (its page being torn down) does not stop the others."""
    try:
        show(*args)
    except Exception:
        log.exception("updating a tab failed")


class RoomFeeds:
    """The feeds of one running app, by room id (a feed is dropped when its last tab goes)."""

    def __init__(self, *, max_backlog: int = MAX_BACKLOG) -> None:
        self._feeds: dict[int, RoomFeed] = {}
        self._max_backlog = max_backlog

    def feed_for(self, room_id: int) -> RoomFeed:
        """The room's feed in this process, created on first use."""
        feed = self._feeds.get(room_id)
        if feed is None:
            feed = self._feeds[room_id] = RoomFeed(room_id, on_empty=self._drop, max_backlog=self._max_backlog)
        return feed

    def _drop(self, feed: RoomFeed) -> None:
        if self._feeds.get(feed.room_id) is feed:
            del self._feeds[feed.room_id]

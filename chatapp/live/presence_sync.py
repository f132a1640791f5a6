"""Presence across processes: each process tells the others, over the bus, how its own connections
change, and keeps what the others tell it in its RoomPresence (live/presence.py), so a room's presence
covers every process. Like Phoenix's tracker, without a broker of its own:

- a change of this process's connections goes out as a PresenceChanged (one room's diff);
- a process that starts, or that may have missed news (a FeedGap on the presence topic), asks with a
  PresenceHello, and every other process answers with a PresenceSnapshot of its own connections;
- every process beats every `beat_s`; one not heard of for `lost_after_s` is taken for dead and its
  connections leave every room.

All of it on one topic (PRESENCE_TOPIC); a process skips what it said itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from chatapp.domain.events import Event, FeedGap
from chatapp.domain.ports import PubSub
from chatapp.live.presence import RoomPresence

log = logging.getLogger(__name__)

PRESENCE_TOPIC = "presence"
BEAT_S = 5.0
LOST_AFTER_S = 15.0


@dataclass(frozen=True, slots=True)
class PresenceChanged(Event):
    """One room's connections in the `origin` process changed (a presence_diff)."""

    kind: ClassVar[str] = "presence_changed"
    origin: str
    room_id: int
    diff: dict[str, Any]


@dataclass(frozen=True, slots=True)
class PresenceHello(Event):
    """A process asks every other one for its connections (it just started, or may have missed news)."""

    kind: ClassVar[str] = "presence_hello"
    origin: str


@dataclass(frozen=True, slots=True)
class PresenceSnapshot(Event):
    """Every connection of the `origin` process: room id (as text, JSON's keys) -> key -> metas."""

    kind: ClassVar[str] = "presence_snapshot"
    origin: str
    rooms: dict[str, Any]


@dataclass(frozen=True, slots=True)
class PresenceBeat(Event):
    """The `origin` process is alive."""

    kind: ClassVar[str] = "presence_beat"
    origin: str


class PresenceSync:
    """Keeps a RoomPresence in step with the other processes."""

    def __init__(
        self,
        presence: RoomPresence,
        pubsub: PubSub,
        origin: str,
        *,
        beat_s: float = BEAT_S,
        lost_after_s: float = LOST_AFTER_S,
    ) -> None:
        self._presence, self._pubsub, self.origin = presence, pubsub, origin
        self._beat_s, self._lost_after_s = beat_s, lost_after_s
        self._heard: dict[str, float] = {}  # another process -> when it was last heard of
        self._tasks: set[asyncio.Task[None]] = set()
        self._beating: asyncio.Task[None] | None = None
        self._stop_listening = lambda: None

    async def start(self) -> None:
        """Hear the others, tell them this process's changes, and ask what they have."""
        self._stop_listening = self._pubsub.subscribe(PRESENCE_TOPIC, self._on_event)
        self._presence.on_local_change = self._local_changed
        self._beating = asyncio.create_task(self._beat_forever(), name="presence beat")
        await self._pubsub.publish(PRESENCE_TOPIC, PresenceHello(self.origin))

    async def stop(self) -> None:
        """Stop beating and hearing (the others drop this process's connections when they time out,
        or at once when its sockets close first)."""
        self._presence.on_local_change = None
        self._stop_listening()
        for task in [self._beating, *self._tasks]:
            if task is not None:
                task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*(t for t in [self._beating, *self._tasks] if t is not None), return_exceptions=True)

    def _local_changed(self, room_id: int, diff: dict[str, Any]) -> None:
        self._publish(PresenceChanged(self.origin, room_id, diff))

    def _publish(self, event: Event) -> None:
        task = asyncio.get_running_loop().create_task(self._pubsub.publish(PRESENCE_TOPIC, event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _on_event(self, event: Event) -> None:
        if isinstance(event, FeedGap):  # what the others said meanwhile may be lost: ask again
            await self._pubsub.publish(PRESENCE_TOPIC, PresenceHello(self.origin))
            return
        origin = getattr(event, "origin", None)
        if origin is None or origin == self.origin:
            return
        self._heard[origin] = time.monotonic()
        if isinstance(event, PresenceChanged):
            self._presence.apply_remote(origin, event.room_id, event.diff)
        elif isinstance(event, PresenceHello):
            rooms = {str(room_id): keys for room_id, keys in self._presence.local_rooms().items()}
            await self._pubsub.publish(PRESENCE_TOPIC, PresenceSnapshot(self.origin, rooms))
        elif isinstance(event, PresenceSnapshot):
            self._presence.replace_remote(origin, {int(room_id): keys for room_id, keys in event.rooms.items()})

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self._beat_s)
            try:
                await self._pubsub.publish(PRESENCE_TOPIC, PresenceBeat(self.origin))
                self.drop_silent()
            except Exception:
                log.warning("presence beat failed", exc_info=True)

    def drop_silent(self) -> None:
        """Take the processes not heard of for lost_after_s for dead: their connections leave."""
        now = time.monotonic()
        for origin in self._presence.remote_origins():
            if now - self._heard.get(origin, now) > self._lost_after_s:
                log.info("presence: process %s went silent; its connections leave", origin)
                self._presence.drop_remote(origin)
                self._heard.pop(origin, None)

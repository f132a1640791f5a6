"""Live delivery: one subscription per room per process, one load per event, fan-out to watchers."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from chatapp.domain.access import room_access
from chatapp.domain.events import (
    AiNotice,
    AiReplyDelta,
    AiReplyEnded,
    AiReplyStarted,
    Event,
    FeedGap,
    MessageDeleted,
    MessagePosted,
    MessageUpdated,
    ParticipantRemoved,
    ParticipantsChanged,
    RoomDeleted,
    RoomListChanged,
    RoomSettingsChanged,
    SessionsRevoked,
    guest_topic,
    room_topic,
    user_topic,
)
from chatapp.domain.models import Actor, Message, Scope
from chatapp.domain.ports import PubSub, Transactor

log = logging.getLogger(__name__)

AI_EVENTS = (AiReplyStarted, AiReplyDelta, AiReplyEnded, AiNotice)


class RoomWatcher(Protocol):
    """A live view of a room (a browser tab, later a bot socket)."""

    async def on_message(self, message: Message) -> None: ...
    async def on_participants_changed(self) -> None: ...
    async def on_room_changed(self) -> None: ...
    async def on_room_deleted(self) -> None: ...
    async def on_ai_event(self, event: Event) -> None: ...
    async def on_participant_removed(self, participant_id: int, *, left: bool) -> None: ...
    async def on_message_deleted(self, message_id: int, deleted_at: datetime | None) -> None: ...
    async def on_gap(self, since: datetime | None) -> None: ...  # news saved since then may be missing: reload


@dataclass
class _RoomChannel:
    # watcher -> how many times it was registered: a watcher shared by several views (a page
    # layer's per-room feed) is registered once per view, authorised each time, and called once.
    watchers: dict[RoomWatcher, int] = field(default_factory=dict)
    unsubscribe: Callable[[], None] | None = None


class LiveRooms:
    """Fans room events out to the watchers in this process; loads each new message once."""

    def __init__(self, *, tx: Transactor, pubsub: PubSub) -> None:
        self._tx = tx
        self._pubsub = pubsub
        self._channels: dict[int, _RoomChannel] = {}

    async def watch(self, actor: Actor, room_id: int, watcher: RoomWatcher) -> Callable[[], None]:
        """Start delivering the room's news to the watcher, if the actor may see the room.

        Returns the function that stops it. A watcher registered several times (for several
        actors' views) gets each event once, until every registration has been stopped.
        """
        await self._tx.run(lambda uow: room_access(uow, actor, room_id, scope=Scope.READ))
        channel = self._channels.get(room_id)
        if channel is None:
            channel = self._channels[room_id] = _RoomChannel()
            channel.unsubscribe = self._pubsub.subscribe(room_topic(room_id), self._dispatch)
        channel.watchers[watcher] = channel.watchers.get(watcher, 0) + 1
        stopped = False

        def stop() -> None:
            nonlocal stopped
            if not stopped:
                stopped = True
                self._unwatch(room_id, watcher)

        return stop

    def _unwatch(self, room_id: int, watcher: RoomWatcher) -> None:
        channel = self._channels.get(room_id)
        if channel is None:
            return
        remaining = channel.watchers.get(watcher, 0) - 1
        if remaining > 0:
            channel.watchers[watcher] = remaining
        else:
            channel.watchers.pop(watcher, None)
        if not channel.watchers:
            del self._channels[room_id]
            if channel.unsubscribe:
                channel.unsubscribe()

    async def _dispatch(self, event: Event) -> None:
        if isinstance(event, MessagePosted | MessageUpdated):  # a watcher shows the newest version by id
            channel = self._channels.get(event.room_id)
            if not channel:
                return
            message = event.message or await self._tx.run(lambda uow: uow.messages.get(event.message_id))
            if message is not None:
                await self._each(event.room_id, lambda w: w.on_message(message))
        elif isinstance(event, ParticipantsChanged):
            await self._each(event.room_id, lambda w: w.on_participants_changed())
        elif isinstance(event, RoomSettingsChanged):
            await self._each(event.room_id, lambda w: w.on_room_changed())
        elif isinstance(event, RoomDeleted):
            await self._each(event.room_id, lambda w: w.on_room_deleted())
        elif isinstance(event, ParticipantRemoved):
            await self._each(event.room_id, lambda w: w.on_participant_removed(event.participant_id, left=event.left))
        elif isinstance(event, MessageDeleted):
            await self._each(event.room_id, lambda w: w.on_message_deleted(event.message_id, event.deleted_at))
        elif isinstance(event, FeedGap) and event.room_id is not None:
            await self._each(event.room_id, lambda w: w.on_gap(event.since))
        elif isinstance(event, AI_EVENTS):
            await self._each(event.room_id, lambda w: w.on_ai_event(event))

    async def _each(self, room_id: int, call: Callable[[RoomWatcher], Awaitable[None]]) -> None:
        channel = self._channels.get(room_id)
        for watcher in list(channel.watchers if channel else ()):
            try:
                await call(watcher)
            except Exception:
                log.exception("room watcher failed; others still get the event")


class SessionWatch:
    """Tells a tab when its user's sessions were revoked, so it can re-check its own."""

    def __init__(self, pubsub: PubSub) -> None:
        self._pubsub = pubsub

    def watch(self, actor: Actor, on_revoked: Callable[[], Awaitable[None]]) -> Callable[[], None]:
        """Call on_revoked whenever any session of the actor (a user, or a guest) is revoked; returns
        the stop function."""

        async def handler(event: Event) -> None:
            if isinstance(event, SessionsRevoked | FeedGap):  # after a gap: check, it may have been missed
                await on_revoked()

        if actor.guest_id is not None:
            topic = guest_topic(actor.guest_id)
        elif actor.user_id is not None:
            topic = user_topic(actor.user_id)
        else:
            raise ValueError("an actor is a user or a guest")
        return self._pubsub.subscribe(topic, handler)

    def watch_room_list(
        self, actor: Actor, on_change: Callable[[RoomListChanged | None], Awaitable[None]]
    ) -> Callable[[], None]:
        """Call on_change whenever the user (a person or a bot) comes into a room or is out of one
        (with None when changes may have been missed: list the rooms again); returns the stop
        function. Guests are in one room for good: nothing to watch."""
        if actor.user_id is None:
            return lambda: None

        async def handler(event: Event) -> None:
            if isinstance(event, RoomListChanged):
                await on_change(event)
            elif isinstance(event, FeedGap):
                await on_change(None)

        return self._pubsub.subscribe(user_topic(actor.user_id), handler)

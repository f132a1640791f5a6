"""The room socket's side of a room's live news: one hub per room per process, watching the room's domain
feed once, that turns each event into one Phoenix frame and hands the same text to every channel joined
to the room (encoded once, whatever the number of sockets)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from chatapp.api.schemas import MessageOut, ParticipantOut, RoomOut
from chatapp.api.socket_frames import CLOSE, ERROR, encode
from chatapp.domain.errors import DomainError
from chatapp.domain.events import AiNotice, Event
from chatapp.domain.models import Actor, Message
from chatapp.domain.services import Services
from chatapp.live.presence import DiffBatcher, RoomPresence

log = logging.getLogger(__name__)


def room_topic_name(room_id: int) -> str:
    """The Phoenix topic of a room."""
    return f"room:{room_id}"


# A channel told to rejoin after a gap comes back within seconds; one that rejoins later than this
# (it was away anyway) asks with its own last message and time.
GAP_KEPT_S = 60.0


class Member(Protocol):
    """What the hub needs of one channel joined to the room."""

    actor: Actor
    participant_id: int | None
    join_ref: str | None

    def push(self, text: str) -> None: ...  # queue a frame for its socket (never waits)
    def closed_by_server(self) -> None: ...  # the channel is over (removed, room deleted)


def message_event(message: Message) -> tuple[str, dict[str, Any]]:
    """The push of a new or changed message: message_posted, or message_updated once it was edited."""
    event = "message_updated" if message.edited_at is not None else "message_posted"
    return event, {"message": MessageOut.of(message).model_dump(mode="json")}


def ai_payload(event: Event) -> dict[str, Any]:
    """An AI event's fields as pushed (its kind is the push's event name)."""
    data = event.to_dict()
    data.pop("kind", None)
    return data


class SocketRoomHub:
    """The channels of this process joined to one room; a RoomWatcher of the domain's live feed."""

    def __init__(
        self,
        room_id: int,
        services: Services,
        presence: RoomPresence,
        on_empty: Callable[[SocketRoomHub], None],
        on_gap: Callable[[int, datetime | None], None] = lambda room_id, since: None,
    ) -> None:
        self.room_id = room_id
        self._note_gap = on_gap
        self.presence = presence
        self.topic = room_topic_name(room_id)
        self.members: list[Member] = []
        self.stop_watching: Callable[[], None] | None = None
        self._presence_diffs = DiffBatcher(lambda diff: self._broadcast("presence_diff", diff))
        stop_listening = presence.listen(room_id, self._presence_diffs)

        def stop_presence() -> None:
            stop_listening()
            self._presence_diffs.cancel()

        self.stop_presence = stop_presence
        self._services = services
        self._on_empty = on_empty

    def add(self, member: Member) -> Callable[[], None]:
        """Send the room's news to this channel too; returns the function that stops it."""
        self.members.append(member)

        def remove() -> None:
            if member in self.members:
                self.members.remove(member)
                if not self.members:
                    self._on_empty(self)

        return remove

    def _broadcast(self, event: str, payload: dict[str, Any], members: list[Member] | None = None) -> None:
        text = encode(None, None, self.topic, event, payload)
        for member in list(self.members if members is None else members):
            member.push(text)

    async def on_message(self, message: Message) -> None:
        self._broadcast(*message_event(message))

    async def on_message_deleted(self, message_id: int, deleted_at: datetime | None = None) -> None:
        at = deleted_at.isoformat() if deleted_at else None
        self._broadcast("message_deleted", {"message_id": message_id, "deleted_at": at})

    async def on_ai_event(self, event: Event) -> None:
        members = None
        if isinstance(event, AiNotice) and event.participant_id is not None:  # for the one who asked
            members = [m for m in self.members if m.participant_id == event.participant_id]
        self._broadcast(event.kind, ai_payload(event), members)

    async def on_participants_changed(self) -> None:
        people = await self._read_as_any(self._services.membership.list_participants)
        if people is not None:
            self._broadcast(
                "participants_changed", {"participants": [ParticipantOut.of(p).model_dump(mode="json") for p in people]}
            )

    async def on_room_changed(self) -> None:
        access = await self._read_as_any(self._services.rooms.get_room_access)
        if access is not None:
            self._broadcast("room_changed", {"room": RoomOut.of(access.room, None).model_dump(mode="json")})

    async def on_room_deleted(self) -> None:
        for member in list(self.members):
            self._end(member, "room_deleted", {"room_id": self.room_id})

    async def on_participant_removed(self, participant_id: int, *, left: bool) -> None:
        for member in [m for m in self.members if m.participant_id == participant_id]:
            self._end(member, "removed", {"reason": "left" if left else "removed"})

    async def on_gap(self, since: datetime | None) -> None:
        """This process may have missed the room's news saved since `since`: every channel is told to
        rejoin (phx_error, as Phoenix says a channel crashed; phoenix.js rejoins by itself), and its
        rejoin with the last message it saw catches it up from the database, with what was written
        since `since` whatever its id."""
        self._note_gap(self.room_id, since)
        for member in list(self.members):
            member.push(encode(member.join_ref, member.join_ref, self.topic, ERROR, {}))
            member.closed_by_server()

    def _end(self, member: Member, event: str, payload: dict[str, Any]) -> None:
        """Tell the channel why, close it (phx_close) and stop sending to it."""
        member.push(encode(member.join_ref, None, self.topic, event, payload))
        member.push(encode(member.join_ref, member.join_ref, self.topic, CLOSE, {}))
        member.closed_by_server()

    async def _read_as_any(self, read: Callable[[Actor, int], Any]) -> Any:
        """Read once, as the first channel whose person still may (None when none may)."""
        for member in list(self.members):
            try:
                return await read(member.actor, self.room_id)
            except DomainError:
                continue
        return None


class SocketRoomHubs:
    """The socket hubs of this process, by room; a hub watches the room's feed while it has channels."""

    def __init__(self, services: Services, presence: RoomPresence) -> None:
        self._services = services
        self.presence = presence
        self._hubs: dict[int, SocketRoomHub] = {}
        self._gaps: dict[int, tuple[float, datetime]] = {}  # room -> (when noticed, news missing since)

    def note_gap(self, room_id: int, since: datetime | None) -> None:
        """This process may have missed the room's news saved since `since` (rejoins catch up from it)."""
        if since is not None:
            earlier = self._gaps.get(room_id)
            self._gaps[room_id] = (time.monotonic(), since if earlier is None else min(earlier[1], since))

    def gap_since(self, room_id: int) -> datetime | None:
        """Since when news of the room may be missing here, for a gap noticed in the last GAP_KEPT_S."""
        now = time.monotonic()
        for stale in [r for r, (noticed, _) in self._gaps.items() if now - noticed > GAP_KEPT_S]:
            del self._gaps[stale]
        noted = self._gaps.get(room_id)
        return noted[1] if noted else None

    async def join(self, member: Member, room_id: int) -> Callable[[], None]:
        """Add the channel (already authorised) to the room's hub; returns the function that takes it out."""
        hub = self._hubs.get(room_id)
        if hub is None:
            hub = SocketRoomHub(room_id, self._services, self.presence, self._drop, self.note_gap)
            self._hubs[room_id] = hub
            try:
                hub.stop_watching = await self._services.live.watch(member.actor, room_id, hub)
            except Exception:
                del self._hubs[room_id]
                hub.stop_presence()
                raise
        return hub.add(member)

    def _drop(self, hub: SocketRoomHub) -> None:
        if self._hubs.get(hub.room_id) is hub:
            del self._hubs[hub.room_id]
            hub.stop_presence()
            if hub.stop_watching is not None:
                hub.stop_watching()

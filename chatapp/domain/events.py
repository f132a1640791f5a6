"""Events published after a successful commit. They carry ids, not bodies."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from chatapp.domain.models import Message


@dataclass(frozen=True, slots=True)
class Event:
    kind: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form, for pub/sub adapters that cross processes."""
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True, slots=True)
class _MessageEvent(Event):
    """In-process subscribers also get the message itself (saving a reload); adapters that cross
    processes send only the ids and the receiver loads it."""

    room_id: int
    message_id: int
    message: Message | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "room_id": self.room_id, "message_id": self.message_id}


@dataclass(frozen=True, slots=True)
class MessagePosted(_MessageEvent):
    """A message was committed."""

    kind: ClassVar[str] = "message_posted"


@dataclass(frozen=True, slots=True)
class MessageUpdated(_MessageEvent):
    """A message's content changed (a regenerated AI reply replaced the old text)."""

    kind: ClassVar[str] = "message_updated"


@dataclass(frozen=True, slots=True)
class RoomSettingsChanged(Event):
    """The room's owner changed its settings (the AI's mode, instruction or model; who may invite;
    whether guests may ask the AI)."""

    kind: ClassVar[str] = "room_settings_changed"
    room_id: int


@dataclass(frozen=True, slots=True)
class ParticipantsChanged(Event):
    kind: ClassVar[str] = "participants_changed"
    room_id: int


@dataclass(frozen=True, slots=True)
class SessionsRevoked(Event):
    """Some sessions of a user (or a guest, guest_id) ended: their tabs re-check their own."""

    kind: ClassVar[str] = "sessions_revoked"
    user_id: int | None
    guest_id: int | None = None


@dataclass(frozen=True, slots=True)
class ParticipantRemoved(Event):
    """Someone is no longer in the room: removed by a moderator, or they left (`left`). Their tabs
    there lose access."""

    kind: ClassVar[str] = "participant_removed"
    room_id: int
    participant_id: int
    left: bool = False


@dataclass(frozen=True, slots=True)
class RoomDeleted(Event):
    """The owner deleted the room: every tab of it goes back to the lobby."""

    kind: ClassVar[str] = "room_deleted"
    room_id: int


@dataclass(frozen=True, slots=True)
class MessageDeleted(Event):
    """A message was deleted: it disappears from every screen."""

    kind: ClassVar[str] = "message_deleted"
    room_id: int
    message_id: int
    deleted_at: datetime | None = None  # as stored: a tab notes it as the latest news it has


@dataclass(frozen=True, slots=True)
class AiReplyStarted(Event):
    """The room's AI began a reply (it shows as typing until the first text)."""

    kind: ClassVar[str] = "ai_reply_started"
    room_id: int
    reply_id: str
    replaces: int | None = None  # the id of the reply being regenerated, if it is one


@dataclass(frozen=True, slots=True)
class AiReplyDelta(Event):
    """More text of a running reply: only what is new, coalesced (at most ~10 a second)."""

    kind: ClassVar[str] = "ai_reply_delta"
    room_id: int
    reply_id: str
    text: str


@dataclass(frozen=True, slots=True)
class AiReplyEnded(Event):
    """The reply is over: saved as message_id (None when there was no text), with its status and,
    when it did not complete, a notice for the room."""

    kind: ClassVar[str] = "ai_reply_ended"
    room_id: int
    reply_id: str
    message_id: int | None
    status: str
    notice: str = ""


@dataclass(frozen=True, slots=True)
class AiNotice(Event):
    """Something the room should be told about its AI (it is busy, it is not configured...)."""

    kind: ClassVar[str] = "ai_notice"
    room_id: int
    text: str
    participant_id: int | None = None  # for whom (the one who asked); None: everyone in the room


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        MessagePosted,
        MessageUpdated,
        RoomSettingsChanged,
        ParticipantsChanged,
        SessionsRevoked,
        ParticipantRemoved,
        MessageDeleted,
        AiReplyStarted,
        AiReplyDelta,
        AiReplyEnded,
        AiNotice,
    )
}


def event_from_dict(data: dict[str, Any]) -> Event:
    """Rebuild an event from `Event.to_dict` output."""
    fields = dict(data)
    cls = EVENT_TYPES[fields.pop("kind")]
    return cls(**fields)


def room_topic(room_id: int) -> str:
    """The pub/sub topic of a room's events."""
    return f"room:{room_id}"


def user_topic(user_id: int) -> str:
    """The pub/sub topic of a user's account events."""
    return f"user:{user_id}"


def guest_topic(guest_id: int) -> str:
    """The pub/sub topic of a guest's session events."""
    return f"guest:{guest_id}"

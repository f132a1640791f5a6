"""Events published after a successful commit. They carry ids, not bodies."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class Event:
    kind: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form, for pub/sub adapters that cross processes."""
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True, slots=True)
class MessagePosted(Event):
    kind: ClassVar[str] = "message_posted"
    room_id: int
    message_id: int


@dataclass(frozen=True, slots=True)
class ParticipantsChanged(Event):
    kind: ClassVar[str] = "participants_changed"
    room_id: int


@dataclass(frozen=True, slots=True)
class SessionsRevoked(Event):
    kind: ClassVar[str] = "sessions_revoked"
    user_id: int


EVENT_TYPES: dict[str, type[Event]] = {cls.kind: cls for cls in (MessagePosted, ParticipantsChanged, SessionsRevoked)}


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

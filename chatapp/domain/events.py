"""Events published after a successful commit. They carry ids, not bodies.

Every event class with a `kind` of its own registers itself in EVENT_TYPES when it is defined, so an
adapter that crosses processes can send `to_dict()` as JSON and the receiver rebuild the event with
`event_from_dict` (tests/domain/test_events.py takes every one of them through that round trip).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from functools import cache
from typing import Any, ClassVar, get_args, get_type_hints

from chatapp.domain.models import Message

EVENT_TYPES: dict[str, type[Event]] = {}  # kind -> event class, filled by Event.__init_subclass__

IN_PROCESS_ONLY = {"in_process_only": True}  # field metadata: left out of to_dict (not sent across processes)


@dataclass(frozen=True, slots=True)
class Event:
    kind: ClassVar[str] = "event"
    crosses_processes: ClassVar[bool] = True  # False: only for this process's subscribers (FeedGap)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # super() without arguments would name the class that @dataclass(slots=True) replaced
        super(Event, cls).__init_subclass__(**kwargs)
        _register(cls)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe form (datetimes as ISO 8601 strings with their offset), for pub/sub adapters that
        cross processes; fields marked IN_PROCESS_ONLY are left out."""
        data: dict[str, Any] = {"kind": self.kind}
        for f in fields(self):
            if not f.metadata.get("in_process_only"):
                data[f.name] = _json_safe(getattr(self, f.name))
        return data


def _register(cls: type[Event]) -> None:
    """Put an event class in EVENT_TYPES under its kind; bases (private, or without a kind of their own)
    stay out. @dataclass(slots=True) builds a second class with the same name from the first one, so
    the class of a name seen again replaces it: the registry ends up with the class the module names."""
    if cls.__name__.startswith("_") or "kind" not in cls.__dict__:
        return
    known = EVENT_TYPES.get(cls.kind)
    if known is not None and (known.__module__, known.__qualname__) != (cls.__module__, cls.__qualname__):
        raise TypeError(f"{cls.__qualname__} and {known.__qualname__} both have the kind {cls.kind!r}")
    EVENT_TYPES[cls.kind] = cls


def _json_safe(value: Any) -> Any:
    if isinstance(value, datetime):  # a time without a zone is one of ours: UTC
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    return value


@cache
def _datetime_fields(kind: str) -> tuple[str, ...]:
    """The names of the fields of the event class of this kind that hold a datetime (or None)."""
    cls = EVENT_TYPES[kind]
    hints = get_type_hints(cls)
    return tuple(f.name for f in fields(cls) if datetime in (get_args(hints[f.name]) or (hints[f.name],)))


@dataclass(frozen=True, slots=True)
class _MessageEvent(Event):
    """In-process subscribers also get the message itself (saving a reload); adapters that cross
    processes send only the ids and the receiver loads it."""

    room_id: int
    message_id: int
    message: Message | None = field(default=None, compare=False, repr=False, metadata=IN_PROCESS_ONLY)


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
class RoomListChanged(Event):
    """A user (a person or a bot) came into a room or is out of it: `change` is "joined" (also added,
    let back in, or the room they created), "left", "removed" or "deleted" (the room is gone). Told on
    the user's topic, so a client that lists its rooms (the room socket's `user:<id>`) follows along."""

    kind: ClassVar[str] = "room_list_changed"
    user_id: int
    room_id: int
    change: str


ROOM_LIST_CHANGES = ("joined", "left", "removed", "deleted")


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
class AiStopRequested(Event):
    """Someone asked to stop the room's reply through another process than the one writing it."""

    kind: ClassVar[str] = "ai_stop_requested"
    room_id: int
    reply_id: str


@dataclass(frozen=True, slots=True)
class AiTextWanted(Event):
    """A process about to show a reply another process writes asks it for the text so far (the row's
    beat can be two seconds old); `ask` pairs the answer with the question."""

    kind: ClassVar[str] = "ai_text_wanted"
    room_id: int
    reply_id: str
    ask: str


@dataclass(frozen=True, slots=True)
class AiTextNow(Event):
    """The writing process's answer to AiTextWanted: the reply's text as it is now (the deltas after it
    follow it on the bus)."""

    kind: ClassVar[str] = "ai_text_now"
    room_id: int
    reply_id: str
    ask: str
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


@dataclass(frozen=True, slots=True)
class BotHooksChanged(Event):
    """A bot's outgoing webhook was set or removed: every process forgets the targets it knew."""

    kind: ClassVar[str] = "bot_hooks_changed"
    bot_id: int


@dataclass(frozen=True, slots=True)
class FeedGap(Event):
    """This process may have missed events of the topic it is published on (the bus to the other
    processes was down, or lost some): whoever shows the topic's news reloads it from the database.
    `room_id` says whose room on a room's topic (None on "room:*", a user's or a guest's topic).
    `since`: what was saved from then on may be missing (messages too: one saved by a process that died
    before telling, or told while this one was deaf, can have a smaller id than one already shown).
    Never sent to other processes: each notices its own gaps."""

    kind: ClassVar[str] = "feed_gap"
    crosses_processes: ClassVar[bool] = False
    room_id: int | None = None
    since: datetime | None = None


def gap_of(topic: str, since: datetime | None = None) -> FeedGap:
    """The FeedGap to publish on a topic: news saved from `since` on may be missing."""
    prefix, _, rest = topic.partition(":")
    room_id = int(rest) if prefix == "room" and rest.isdecimal() else None
    return FeedGap(room_id=room_id, since=since)


def event_from_dict(data: dict[str, Any]) -> Event:
    """Rebuild an event from `Event.to_dict` output, also after a JSON round trip (datetimes are parsed
    back); ValueError for a kind no event has."""
    values = dict(data)
    kind = values.pop("kind", None)
    cls = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"unknown event kind {kind!r}")
    for name in _datetime_fields(cls.kind):
        if isinstance(values.get(name), str):
            values[name] = datetime.fromisoformat(values[name])
    return cls(**values)


def room_topic(room_id: int) -> str:
    """The pub/sub topic of a room's events."""
    return f"room:{room_id}"


EVERY_ROOM = "room:*"  # subscribes to the events of every room
BOTS_TOPIC = "bots"  # bots' outgoing webhooks were set or removed (BotHooksChanged)


def user_topic(user_id: int) -> str:
    """The pub/sub topic of a user's account events."""
    return f"user:{user_id}"


def guest_topic(guest_id: int) -> str:
    """The pub/sub topic of a guest's session events."""
    return f"guest:{guest_id}"

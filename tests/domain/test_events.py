"""Every domain event crosses a process boundary intact: to_dict, through JSON, and back.

The events are found by walking Event's subclasses, so a new event class is covered (and must be
registered) without anyone adding it here; sample values come from its dataclass fields' types.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
import types
import typing
from dataclasses import MISSING, fields
from datetime import UTC, datetime, timedelta, timezone

import pytest

from chatapp.domain.events import EVENT_TYPES, Event, MessageDeleted, MessagePosted, event_from_dict
from chatapp.domain.models import Message, ParticipantKind


def _import_every_module() -> None:
    """Events are defined beside what publishes them (live/presence_sync.py too): import them all."""
    for package in ("chatapp.domain", "chatapp.live", "chatapp.store", "chatapp.api"):
        for found in pkgutil.walk_packages(importlib.import_module(package).__path__, f"{package}."):
            if ".migrations" not in found.name:
                importlib.import_module(found.name)


_import_every_module()


def _subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def _is_public(cls: type) -> bool:
    """The class its module names (@dataclass(slots=True) leaves behind the class it replaced), and not a
    private base such as _MessageEvent."""
    return not cls.__name__.startswith("_") and getattr(sys.modules[cls.__module__], cls.__qualname__, None) is cls


EVENT_CLASSES = sorted({cls for cls in _subclasses(Event) if _is_public(cls)}, key=lambda cls: cls.__name__)


def _sample(kind: object, n: int) -> object:
    """A value of the field's type (the first type of a union other than None)."""
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
    if kind is bool:
        return True
    if kind is int:
        return 100 + n
    if kind is str:
        return f'text {n}: é \u2028 "quoted"'
    if typing.get_origin(kind) is dict:  # JSON's own shapes, with text that must survive
        return {"k": [n, f"é {n}", {"nested": None, "ok": True}]}
    if kind is datetime:  # not UTC, with microseconds: the offset and the precision must survive
        return datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2)))
    raise AssertionError(f"no sample value for a field of type {kind!r}: add one to _sample")


def sample_event(cls: type[Event]) -> Event:
    """An instance with a value in every field that crosses processes (in-process-only ones keep their default)."""
    hints = typing.get_type_hints(cls, localns={"Message": Message})
    values = {
        f.name: _sample(hints[f.name], n) for n, f in enumerate(fields(cls)) if not f.metadata.get("in_process_only")
    }
    return cls(**values)


def through_json(event: Event) -> Event:
    return event_from_dict(json.loads(json.dumps(event.to_dict())))


def test_the_walk_finds_the_events() -> None:
    names = {cls.__name__ for cls in EVENT_CLASSES}
    assert {"MessagePosted", "MessageDeleted", "RoomDeleted", "AiReplyDelta", "SessionsRevoked"} <= names
    assert "_MessageEvent" not in names and "Event" not in names


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=lambda cls: cls.__name__)
def test_every_event_is_registered_under_its_own_kind(cls: type[Event]) -> None:
    assert "kind" in cls.__dict__, f"{cls.__name__} needs a kind of its own"
    assert EVENT_TYPES[cls.kind] is cls


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=lambda cls: cls.__name__)
def test_every_event_round_trips_through_json(cls: type[Event]) -> None:
    event = sample_event(cls)
    assert through_json(event) == event
    required = {f.name: getattr(event, f.name) for f in fields(cls) if f.default is MISSING}
    with_defaults = cls(**required)  # None where a field may be None
    assert through_json(with_defaults) == with_defaults


def test_no_two_events_share_a_kind_and_only_events_are_registered() -> None:
    kinds = [cls.kind for cls in EVENT_CLASSES]
    assert len(kinds) == len(set(kinds))
    assert set(EVENT_TYPES) == set(kinds)


def test_a_second_event_with_a_taken_kind_is_refused() -> None:
    with pytest.raises(TypeError, match="message_posted"):

        class Impostor(Event):
            kind = "message_posted"


def test_datetimes_cross_as_iso_8601_with_their_offset_and_come_back_equal() -> None:
    at = datetime(2024, 5, 6, 7, 8, 9, 5, tzinfo=UTC)
    event = MessageDeleted(room_id=1, message_id=2, deleted_at=at)
    data = json.loads(json.dumps(event.to_dict()))
    assert data == {
        "kind": "message_deleted",
        "room_id": 1,
        "message_id": 2,
        "deleted_at": "2024-05-06T07:08:09.000005+00:00",
    }
    back = event_from_dict(data)
    assert back == event and back.deleted_at.tzinfo is not None


def test_the_message_an_event_carries_in_process_stays_in_process() -> None:
    message = Message(2, 1, 3, "Ann", ParticipantKind.USER, "hi", datetime.now(UTC))
    data = MessagePosted(room_id=1, message_id=2, message=message).to_dict()
    assert data == {"kind": "message_posted", "room_id": 1, "message_id": 2}
    assert event_from_dict(data).message is None


def test_an_unknown_kind_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown event kind 'nonsense'"):
        event_from_dict({"kind": "nonsense", "room_id": 1})

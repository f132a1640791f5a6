"""The room's settings as its owner saves them: name, topic, the AI's mode, instruction and model, and the
room's options, all in one unit of work (every field checked first, one transaction, one event)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

from chatapp.domain.access import lock_room, require_owner
from chatapp.domain.ai_settings import AiSettings
from chatapp.domain.errors import ValidationError
from chatapp.domain.events import RoomSettingsChanged, room_topic
from chatapp.domain.models import Actor, Room, RoomOptions
from chatapp.domain.ports import PubSub, Transactor, UnitOfWork
from chatapp.domain.rooms import RoomLimits, validate_room_details

OPTION_NAMES = tuple(f.name for f in fields(RoomOptions))


@dataclass(frozen=True, slots=True)
class RoomSettingsChanges:
    """What the owner asks to change; a field left None stays as it is. A ValidationError names the
    fields it refuses by these names."""

    name: str | None = None
    topic: str | None = None
    mode: str | None = None  # when the AI answers: "off", "mention" or "every"
    instruction: str | None = None  # the AI's instruction (persona, tone...)
    model: str | None = None  # the AI's model; "" for the server's default
    members_can_invite: bool | None = None
    guests_can_use_ai: bool | None = None
    signed_up_guests_become_members: bool | None = None


@dataclass(frozen=True, slots=True)
class _Wanted:
    """The changes, checked and cleaned as they are saved, by the field names of what they change."""

    details: dict[str, str]  # Room's name, topic
    ai: dict[str, Any]  # RoomAiSettings' mode, instruction, model
    options: dict[str, bool]  # RoomOptions'


class RoomSettings:
    """The owner changes the room's settings: all the fields asked for, or none."""

    def __init__(self, *, tx: Transactor, pubsub: PubSub, limits: RoomLimits, ai: AiSettings) -> None:
        self._tx = tx
        self._pubsub = pubsub
        self._limits = limits
        self._ai = ai

    async def update_room_settings(self, actor: Actor, room_id: int, changes: RoomSettingsChanges) -> Room:
        """The owner changes any of the room's name, topic, AI mode, instruction and model, and its options,
        at once. Every field is checked first: a ValidationError names each bad one and nothing is saved.
        Then what differs is saved in one transaction, and the room's open tabs are told once (not at all
        when nothing changed). Returns the room as it is now."""
        wanted = self._validate(changes)

        def work(uow: UnitOfWork) -> tuple[Room, bool]:
            lock_room(uow, room_id)  # two owners saving at once: each change is made on the other's
            room = require_owner(uow, actor, room_id).room
            saved = [
                _save_details(uow, room, wanted.details),
                _save_ai(uow, room, wanted.ai),
                _save_options(uow, room, wanted.options),
            ]
            return (uow.rooms.get(room_id) or room, True) if any(saved) else (room, False)

        room, changed = await self._tx.run(work, write=True)
        if changed:
            await self._pubsub.publish(room_topic(room_id), RoomSettingsChanged(room_id=room_id))
        return room

    def _validate(self, changes: RoomSettingsChanges) -> _Wanted:
        """Every field checked by the rules of its context; one ValidationError with all the bad ones."""
        errors: dict[str, str] = {}
        details = _collect(errors, lambda: validate_room_details(self._limits, name=changes.name, topic=changes.topic))
        ai = _collect(
            errors,
            lambda: self._ai.validate_settings(mode=changes.mode, instruction=changes.instruction, model=changes.model),
        )
        if errors:
            raise ValidationError(errors)
        options = {name: bool(value) for name in OPTION_NAMES if (value := getattr(changes, name)) is not None}
        return _Wanted(details=details, ai=ai, options=options)


def _collect(errors: dict[str, str], check: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """What `check` returns, or {} with its field errors added to `errors`."""
    try:
        return check()
    except ValidationError as refused:
        errors.update(refused.fields)
        return {}


def _save_details(uow: UnitOfWork, room: Room, details: dict[str, str]) -> bool:
    """Save the name and topic if they differ from the room's; whether they did."""
    name, topic = details.get("name", room.name), details.get("topic", room.topic)
    if (name, topic) == (room.name, room.topic):
        return False
    uow.rooms.set_details(room.id, name=name, topic=topic)
    return True


def _save_ai(uow: UnitOfWork, room: Room, ai: dict[str, Any]) -> bool:
    """Save the AI's settings if they differ from the room's; whether they did."""
    if not ai:
        return False
    current = uow.rooms.ai_settings(room.id)
    wanted = replace(current, **ai)
    if wanted == current:
        return False
    uow.rooms.set_ai_settings(room.id, wanted)
    return True


def _save_options(uow: UnitOfWork, room: Room, options: dict[str, bool]) -> bool:
    """Save the options if they differ from the room's; whether they did."""
    wanted = replace(room.options, **options)
    if wanted == room.options:
        return False
    uow.rooms.set_options(room.id, wanted)
    return True

"""Rooms: create, list, see and delete them; every room has its AI participant (this module owns that)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from chatapp.domain.access import lock_room, require_owner, require_scope, room_access
from chatapp.domain.errors import Forbidden, ValidationError
from chatapp.domain.events import RoomDeleted, RoomListChanged, room_topic, user_topic
from chatapp.domain.models import (
    Actor,
    Lobby,
    Participant,
    ParticipantKind,
    Role,
    Room,
    RoomAccess,
    Scope,
    Visibility,
)
from chatapp.domain.ports import Clock, PubSub, Transactor, UnitOfWork, utc_now
from chatapp.domain.validation import clean_text, has_visible_character, hidden_character_error, one_line

PUBLIC_ROOMS_IN_LOBBY = 100


@dataclass(frozen=True)
class RoomLimits:
    max_name_chars: int = 80
    max_topic_chars: int = 300


# Every room has its AI participant: this module is the invariant's one owner. A room gets it when it
# is created; rooms from before (and a changed CHATAPP_AI_NAME) are brought in line at start-up.


def add_ai_participant(uow: UnitOfWork, room_id: int, ai_name: str, now: datetime) -> Participant:
    """Put the AI in a new room, as a member."""
    return uow.participants.add(
        room_id=room_id, kind=ParticipantKind.AI, display_name=ai_name, role=Role.MEMBER, now=now
    )


def give_every_room_its_ai(uow: UnitOfWork, ai_name: str, now: datetime) -> int:
    """At start-up: every room without its AI gets one and every AI takes the configured name; how many
    rooms got one (nothing is written when nothing is missing)."""
    return uow.participants.sync_ai(display_name=ai_name, now=now)


def ai_participant(uow: UnitOfWork, room_id: int) -> Participant:
    """The room's AI participant (every room has one)."""
    ai = uow.participants.ai_of(room_id)
    if ai is None:
        raise LookupError(f"room {room_id} has no AI participant: give_every_room_its_ai was not run")
    return ai


class Rooms:
    """The rooms context."""

    def __init__(
        self,
        *,
        tx: Transactor,
        pubsub: PubSub,
        limits: RoomLimits,
        ai_name: str = "Assistant",
        clock: Clock = utc_now,
        on_deleted: Callable[[int], None] | None = None,
    ) -> None:
        self._on_deleted = on_deleted  # e.g. the AI dropping a reply it was writing there
        self._tx = tx
        self._ai_name = ai_name
        self._pubsub = pubsub
        self._limits = limits
        self._clock = clock

    @property
    def limits(self) -> RoomLimits:
        """How long names and topics may be (forms show it)."""
        return self._limits

    async def create_room(self, actor: Actor, *, name: str, topic: str = "", private: bool = False) -> Room:
        """Create a room with the actor as its owner and the AI participant in it (not for guests or
        bots)."""
        require_scope(actor, Scope.WRITE)
        if actor.is_guest:
            raise Forbidden("Guests cannot create rooms. Create an account to start your own.")
        if actor.is_bot:
            raise Forbidden("Bots cannot create rooms: a room's owner adds a bot to it.")
        details = validate_room_details(self._limits, name=name, topic=topic)
        name, topic = details["name"], details["topic"]
        visibility = Visibility.PRIVATE if private else Visibility.PUBLIC

        def work(uow: UnitOfWork) -> Room:
            now = self._clock()
            room = uow.rooms.add(name=name, topic=topic, visibility=visibility, now=now)
            uow.participants.add(
                room_id=room.id,
                kind=ParticipantKind.USER,
                user_id=actor.user_id,
                display_name=actor.display_name,
                role=Role.OWNER,
                now=now,
            )
            add_ai_participant(uow, room.id, self._ai_name, now)
            return room

        room = await self._tx.run(work, write=True)
        if actor.user_id is not None:
            await self._pubsub.publish(user_topic(actor.user_id), RoomListChanged(actor.user_id, room.id, "joined"))
        return room

    async def list_rooms(self, actor: Actor) -> Lobby:
        """My rooms (newest activity first, with the last message) and public rooms I could join
        (none for guests and bots: they see only the rooms they were invited or added to)."""
        require_scope(actor, Scope.READ)

        def work(uow: UnitOfWork) -> Lobby:
            public = [] if actor.is_guest or actor.is_bot else uow.rooms.public_not_joined(actor, PUBLIC_ROOMS_IN_LOBBY)
            return Lobby(my_rooms=uow.rooms.summaries_for(actor), public_rooms=public)

        return await self._tx.run(work)

    async def get_room_access(self, actor: Actor, room_id: int) -> RoomAccess:
        """The room and the actor's participant in it; NotFound if they may not see it."""
        return await self._tx.run(lambda uow: room_access(uow, actor, room_id, scope=Scope.READ))

    async def delete_room(self, actor: Actor, room_id: int, *, confirm_name: str) -> None:
        """The owner deletes the room for good, with its messages, people and links; `confirm_name`
        must be the room's name (typed, so that a slip cannot do it). Every open tab of it leaves."""

        def work(uow: UnitOfWork) -> set[int]:
            lock_room(uow, room_id)
            room = require_owner(uow, actor, room_id).room
            if one_line(confirm_name) != room.name:
                raise ValidationError({"confirm_name": "Type the room's name exactly to delete it."})
            users = {p.user_id for p in uow.participants.list(room_id) if p.user_id is not None}
            uow.rooms.delete(room_id)
            return users

        users = await self._tx.run(work, write=True)
        if self._on_deleted is not None:
            self._on_deleted(room_id)
        await self._pubsub.publish(room_topic(room_id), RoomDeleted(room_id=room_id))
        for user_id in sorted(users):
            await self._pubsub.publish(user_topic(user_id), RoomListChanged(user_id, room_id, "deleted"))


def validate_room_details(limits: RoomLimits, *, name: str | None = None, topic: str | None = None) -> dict[str, str]:
    """The given name and topic cleaned as they are saved, by field ("name", "topic"; one left out or None
    is not in it); a ValidationError names each one that breaks the rules."""
    cleaned: dict[str, str] = {}
    errors: dict[str, str] = {}
    if name is not None:
        typed, name = name, one_line(name)
        cleaned["name"] = name
        if error := hidden_character_error("Room name", typed):
            errors["name"] = error
        elif not name or not has_visible_character(name):
            errors["name"] = "Room name is required." if not name else "Room name needs a visible character."
        elif len(name) > limits.max_name_chars:
            errors["name"] = f"Room name must be at most {limits.max_name_chars} characters."
    if topic is not None:
        cleaned["topic"] = topic = clean_text(topic)
        if len(topic) > limits.max_topic_chars:
            errors["topic"] = f"Topic must be at most {limits.max_topic_chars} characters."
    if errors:
        raise ValidationError(errors)
    return cleaned

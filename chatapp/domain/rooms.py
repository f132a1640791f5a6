"""Rooms and participants: create, list, see, join."""

from __future__ import annotations

from dataclasses import dataclass

from chatapp.domain.errors import Conflict, NotFound, ValidationError
from chatapp.domain.events import ParticipantsChanged, room_topic
from chatapp.domain.models import (
    Actor,
    Lobby,
    Participant,
    ParticipantKind,
    Role,
    Room,
    RoomAccess,
    Visibility,
)
from chatapp.domain.ports import Clock, PubSub, Transactor, UnitOfWork, utc_now
from chatapp.domain.validation import clean_text, one_line

PUBLIC_ROOMS_IN_LOBBY = 100
MAX_ID = 2**31 - 1


@dataclass(frozen=True)
class RoomLimits:
    max_name_chars: int = 80
    max_topic_chars: int = 300


def is_valid_id(value: object) -> bool:
    """True for an int that can be a row id (positive, fits a 32-bit column on PostgreSQL)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID


def room_access(uow: UnitOfWork, actor: Actor, room_id: int) -> RoomAccess:
    """What the actor may do in the room. Private rooms they are not in raise NotFound, like no room."""
    found = uow.rooms.with_participant(room_id, actor.user_id) if is_valid_id(room_id) else None
    if found is None:
        raise NotFound("Room not found.")
    room, me = found
    if me is None and room.is_private:
        raise NotFound("Room not found.")
    return RoomAccess(room=room, me=me)


class Rooms:
    """The rooms context."""

    def __init__(
        self, *, tx: Transactor, pubsub: PubSub, limits: RoomLimits, ai_name: str = "Assistant", clock: Clock = utc_now
    ) -> None:
        self._tx = tx
        self._ai_name = ai_name
        self._pubsub = pubsub
        self._limits = limits
        self._clock = clock

    async def create_room(self, actor: Actor, *, name: str, topic: str = "", private: bool = False) -> Room:
        """Create a room with the actor as its owner and the AI participant in it."""
        name, topic = self._validate(name, topic)
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
            uow.participants.add(
                room_id=room.id, kind=ParticipantKind.AI, display_name=self._ai_name, role=Role.MEMBER, now=now
            )
            return room

        return await self._tx.run(work, write=True)

    async def lobby(self, actor: Actor) -> Lobby:
        """My rooms (newest activity first, with the last message) and public rooms I could join."""

        def work(uow: UnitOfWork) -> Lobby:
            return Lobby(
                my_rooms=uow.rooms.summaries_for_user(actor.user_id),
                public_rooms=uow.rooms.public_not_joined(actor.user_id, PUBLIC_ROOMS_IN_LOBBY),
            )

        return await self._tx.run(work)

    async def access(self, actor: Actor, room_id: int) -> RoomAccess:
        """The room and the actor's participant in it; NotFound if they may not see it."""
        return await self._tx.run(lambda uow: room_access(uow, actor, room_id))

    async def join(self, actor: Actor, room_id: int) -> Participant:
        """Join a public room as a member (idempotent)."""

        def work(uow: UnitOfWork) -> tuple[Participant, bool]:
            access = room_access(uow, actor, room_id)
            if access.me is not None:
                return access.me, False
            participant = uow.participants.add(
                room_id=room_id,
                kind=ParticipantKind.USER,
                user_id=actor.user_id,
                display_name=actor.display_name,
                role=Role.MEMBER,
                now=self._clock(),
            )
            return participant, True

        try:
            participant, created = await self._tx.run(work, write=True)
        except Conflict:  # a concurrent join of the same user won: theirs is ours
            access = await self.access(actor, room_id)
            assert access.me is not None
            return access.me
        if created:
            await self._pubsub.publish(room_topic(room_id), ParticipantsChanged(room_id=room_id))
        return participant

    async def participants(self, actor: Actor, room_id: int) -> list[Participant]:
        """Everyone in a room the actor can see, owners first."""

        def work(uow: UnitOfWork) -> list[Participant]:
            room_access(uow, actor, room_id)
            return uow.participants.list(room_id)

        return await self._tx.run(work)

    def _validate(self, name: str, topic: str) -> tuple[str, str]:
        name, topic = one_line(name), clean_text(topic)
        errors = {}
        if not name:
            errors["name"] = "Room name is required."
        elif len(name) > self._limits.max_name_chars:
            errors["name"] = f"Room name must be at most {self._limits.max_name_chars} characters."
        if len(topic) > self._limits.max_topic_chars:
            errors["topic"] = f"Topic must be at most {self._limits.max_topic_chars} characters."
        if errors:
            raise ValidationError(errors)
        return name, topic

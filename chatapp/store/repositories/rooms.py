"""Rooms: their details, settings and options, and the access query (a room with the actor in it)."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Row, Select, and_, bindparam, func, select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, delete

from chatapp.domain.ai_models import RoomAiSettings
from chatapp.domain.models import (
    Actor,
    AiMode,
    Participant,
    ParticipantState,
    Role,
    Room,
    RoomOptions,
    RoomSummary,
    Visibility,
)
from chatapp.store.repositories.rows import (
    ACTIVE,
    is_actor,
    load,
    message_from_row,
    participant_from_row,
    room_from_row,
    table_of,
)
from chatapp.store.tables import MessageRow, ParticipantRow, RoomRow

_ROOMS, _PARTICIPANTS = table_of(RoomRow), table_of(ParticipantRow)
_AS_PARTICIPANT = "p_"  # the participant's columns in the access query, prefixed


def _room_with(who: str) -> Select[Any]:
    """The room and the actor's active participant in it (an outer join: None when not in it), as
    plain columns: the access check runs for every post and page, and ORM entities cost more than
    the query (py-spy on bench.writes)."""
    joined = _ROOMS.outerjoin(
        _PARTICIPANTS,
        and_(
            _PARTICIPANTS.c.room_id == _ROOMS.c.id,
            _PARTICIPANTS.c[who] == bindparam("who"),
            _PARTICIPANTS.c.state == ParticipantState.ACTIVE.value,
        ),
    )
    participant = [column.label(_AS_PARTICIPANT + column.name) for column in _PARTICIPANTS.c]
    return select(_ROOMS, *participant).select_from(joined).where(_ROOMS.c.id == bindparam("room_id"))


_ROOM_WITH_USER = _room_with("user_id")
_ROOM_WITH_GUEST = _room_with("guest_id")


def _participant_in(row: Row[Any]) -> Participant | None:
    """The prefixed participant columns of an access-query row, if the outer join found one."""
    values = {
        key[len(_AS_PARTICIPANT) :]: value for key, value in row._mapping.items() if key.startswith(_AS_PARTICIPANT)
    }
    return participant_from_row(SimpleNamespace(**values)) if values["id"] is not None else None


class SqlRooms:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add(self, *, name: str, topic: str, visibility: Visibility, now: datetime) -> Room:
        row = RoomRow(name=name, topic=topic, visibility=visibility.value, created_at=now)
        self.s.add(row)
        self.s.flush()
        return room_from_row(row)

    def get(self, room_id: int) -> Room | None:
        row = self.s.get(RoomRow, room_id)
        return room_from_row(row) if row else None

    def ai_settings(self, room_id: int) -> RoomAiSettings:
        row = load(self.s, RoomRow, room_id)
        return RoomAiSettings(mode=AiMode(row.ai_mode), instruction=row.ai_instruction, model=row.ai_model)

    def set_ai_settings(self, room_id: int, settings: RoomAiSettings) -> None:
        row = load(self.s, RoomRow, room_id)
        row.ai_mode = settings.mode.value
        row.ai_instruction = settings.instruction
        row.ai_model = settings.model
        self.s.add(row)
        self.s.flush()

    def lock(self, room_id: int) -> None:
        """Hold the room's row until the transaction ends (PostgreSQL; SQLite writers are serialised
        anyway), so checks such as "is another owner left?" cannot race."""
        self.s.execute(select(col(RoomRow.id)).where(col(RoomRow.id) == room_id).with_for_update())

    def delete(self, room_id: int) -> None:
        """Delete the room; its participants, messages, links and usage go with it (ON DELETE CASCADE)."""
        self.s.exec(delete(RoomRow).where(col(RoomRow.id) == room_id))

    def set_details(self, room_id: int, *, name: str, topic: str) -> Room:
        row = load(self.s, RoomRow, room_id)
        row.name, row.topic = name, topic
        self.s.add(row)
        self.s.flush()
        return room_from_row(row)

    def set_options(self, room_id: int, options: RoomOptions) -> None:
        row = load(self.s, RoomRow, room_id)
        row.members_can_invite = options.members_can_invite
        row.guests_can_use_ai = options.guests_can_use_ai
        row.signed_up_guests_become_members = options.signed_up_guests_become_members
        self.s.add(row)
        self.s.flush()

    def with_participant(self, room_id: int, actor: Actor) -> tuple[Room, Participant | None] | None:
        who: int | None
        if actor.guest_id is not None:
            stmt, who = _ROOM_WITH_GUEST, actor.guest_id
        else:
            stmt, who = _ROOM_WITH_USER, actor.user_id
        found = self.s.execute(stmt, {"room_id": room_id, "who": who}).first()
        if found is None:
            return None
        return room_from_row(found), _participant_in(found)

    def summaries_for(self, actor: Actor) -> list[RoomSummary]:
        last_id = (
            select(func.max(MessageRow.id))
            .where(col(MessageRow.room_id) == col(RoomRow.id), col(MessageRow.deleted_at).is_(None))
            .correlate(RoomRow)
            .scalar_subquery()
        )
        author = aliased(ParticipantRow)
        stmt = (
            select(RoomRow, col(ParticipantRow.role), MessageRow, author)
            .join(ParticipantRow, and_(col(ParticipantRow.room_id) == col(RoomRow.id), is_actor(actor), ACTIVE))
            .outerjoin(MessageRow, col(MessageRow.id) == last_id)
            .outerjoin(author, col(author.id) == col(MessageRow.participant_id))
            .order_by(func.coalesce(MessageRow.created_at, RoomRow.created_at).desc(), col(RoomRow.id).desc())
        )
        return [
            RoomSummary(
                room=room_from_row(room),
                role=Role(role),
                last_message=message_from_row(message, who) if message is not None else None,
            )
            for room, role, message, who in self.s.execute(stmt).all()
        ]

    def public_not_joined(self, actor: Actor, limit: int) -> list[Room]:
        # rooms they are in, and rooms they were removed from (they cannot join those)
        mine = select(col(ParticipantRow.room_id)).where(
            is_actor(actor), col(ParticipantRow.state) != ParticipantState.LEFT.value
        )
        stmt = (
            select(RoomRow)
            .where(col(RoomRow.visibility) == Visibility.PUBLIC.value, col(RoomRow.id).not_in(mine))
            .order_by(col(RoomRow.id).desc())
            .limit(limit)
        )
        return [room_from_row(row) for row in self.s.execute(stmt).scalars().all()]

"""Participants: who is in a room (people, guests and the room's AI), with their role and state."""

from __future__ import annotations

import builtins
from datetime import datetime

from sqlalchemy import exists, func, insert, literal, select, update
from sqlmodel import Session, col

from chatapp.domain.models import Actor, Participant, ParticipantKind, ParticipantState, Role
from chatapp.store.repositories.rows import ACTIVE, insert_new, is_actor, load, participant_from_row, table_of
from chatapp.store.tables import ParticipantRow, RoomRow

_COLUMNS = table_of(ParticipantRow).c
_IS_AI = col(ParticipantRow.kind) == ParticipantKind.AI.value


class SqlParticipants:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add(
        self,
        *,
        room_id: int,
        kind: ParticipantKind,
        display_name: str,
        role: Role,
        now: datetime,
        user_id: int | None = None,
        guest_id: int | None = None,
        invite_id: int | None = None,
    ) -> Participant:
        row = ParticipantRow(
            room_id=room_id,
            kind=kind.value,
            user_id=user_id,
            guest_id=guest_id,
            invite_id=invite_id,
            display_name=display_name,
            role=role.value,
            joined_at=now,
        )
        insert_new(self.s, row, "participants (room, person)")
        return participant_from_row(row)

    def membership(self, room_id: int, actor: Actor) -> Participant | None:
        """The actor's participant in the room whatever its state (left, removed), if any."""
        stmt = select(ParticipantRow).where(col(ParticipantRow.room_id) == room_id, is_actor(actor))
        row = self.s.execute(stmt).scalars().first()
        return participant_from_row(row) if row else None

    def get(self, participant_id: int) -> Participant | None:
        row = self.s.get(ParticipantRow, participant_id)
        return participant_from_row(row) if row else None

    def save(self, participant: Participant) -> Participant:
        """Write the participant's changeable fields (who they are, name, role, state and its details)."""
        row = load(self.s, ParticipantRow, participant.id)
        row.kind, row.user_id, row.guest_id = participant.kind.value, participant.user_id, participant.guest_id
        row.display_name, row.role = participant.display_name, participant.role.value
        row.state, row.removed_by = participant.state.value, participant.removed_by
        row.joined_at, row.invite_id = participant.joined_at, participant.invite_id
        row.bot_calls = participant.bot_calls.value
        self.s.add(row)
        self.s.flush()
        return participant_from_row(row)

    def count_owners(self, room_id: int) -> int:
        stmt = select(func.count()).where(
            col(ParticipantRow.room_id) == room_id, col(ParticipantRow.role) == Role.OWNER.value, ACTIVE
        )
        return int(self.s.execute(stmt).scalar_one())

    def of_guest(self, guest_id: int) -> builtins.list[Participant]:
        """The guest's participants in every room, whatever their state."""
        stmt = select(ParticipantRow).where(col(ParticipantRow.guest_id) == guest_id).order_by(col(ParticipantRow.id))
        return [participant_from_row(row) for row in self.s.execute(stmt).scalars()]

    def ai_of(self, room_id: int) -> Participant | None:
        stmt = select(ParticipantRow).where(col(ParticipantRow.room_id) == room_id, _IS_AI)
        row = self.s.execute(stmt.order_by(col(ParticipantRow.id))).scalars().first()
        return participant_from_row(row) if row else None

    def sync_ai(self, *, display_name: str, now: datetime) -> int:
        """Give every room its AI participant, named display_name; returns how many rooms got one.

        Reads first and writes only what is missing or renamed, so a start-up with nothing to do
        writes nothing."""
        renamed = select(col(ParticipantRow.id)).where(_IS_AI, col(ParticipantRow.display_name) != display_name)
        if self.s.execute(renamed.limit(1)).first() is not None:
            self.s.exec(update(ParticipantRow).where(_IS_AI).values(display_name=display_name))
        has_ai = exists().where(col(ParticipantRow.room_id) == col(RoomRow.id), _IS_AI)
        if self.s.execute(select(col(RoomRow.id)).where(~has_ai).limit(1)).first() is None:
            return 0
        missing = select(
            col(RoomRow.id),
            literal(ParticipantKind.AI.value, _COLUMNS.kind.type),
            literal(display_name, _COLUMNS.display_name.type),
            literal(Role.MEMBER.value, _COLUMNS.role.type),
            literal(now, _COLUMNS.joined_at.type),
        ).where(~has_ai)
        columns = ["room_id", "kind", "display_name", "role", "joined_at"]
        return self.s.exec(insert(ParticipantRow).from_select(columns, missing)).rowcount or 0

    def rename_user(self, user_id: int, display_name: str) -> list[int]:
        """The user's participants take the new name; returns the rooms they are active in."""
        self.s.exec(
            update(ParticipantRow).where(col(ParticipantRow.user_id) == user_id).values(display_name=display_name)
        )
        stmt = select(col(ParticipantRow.room_id)).where(col(ParticipantRow.user_id) == user_id, ACTIVE)
        return list(self.s.execute(stmt).scalars())

    def count_by_invite(self, invite_id: int, *, excluding: int) -> int:
        stmt = select(func.count()).where(
            col(ParticipantRow.invite_id) == invite_id,
            col(ParticipantRow.id) != excluding,
            col(ParticipantRow.state) != ParticipantState.REMOVED.value,
        )
        return int(self.s.execute(stmt).scalar_one())

    def removed(self, room_id: int) -> list[Participant]:
        stmt = select(ParticipantRow).where(
            col(ParticipantRow.room_id) == room_id, col(ParticipantRow.state) == ParticipantState.REMOVED.value
        )
        return [participant_from_row(row) for row in self.s.execute(stmt.order_by(col(ParticipantRow.id))).scalars()]

    def list(self, room_id: int) -> builtins.list[Participant]:
        stmt = select(ParticipantRow).where(col(ParticipantRow.room_id) == room_id, ACTIVE)
        return [participant_from_row(row) for row in self.s.execute(stmt.order_by(col(ParticipantRow.id))).scalars()]

    def display_names(self, room_id: int) -> builtins.list[str]:
        stmt = select(col(ParticipantRow.display_name)).where(col(ParticipantRow.room_id) == room_id)
        return list(self.s.execute(stmt).scalars())

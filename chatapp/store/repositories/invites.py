"""Invite links: created, found by their token's hash, counted, revoked."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Row, select, update
from sqlmodel import Session, col

from chatapp.domain.models import Invite
from chatapp.store.repositories.rows import aware, saved_id
from chatapp.store.tables import InviteRow, ParticipantRow


def _invite(row: InviteRow, creator: str) -> Invite:
    return Invite(
        id=saved_id(row.id),
        room_id=row.room_id,
        created_by=row.created_by,
        created_by_name=creator,
        created_at=aware(row.created_at),
        expires_at=aware(row.expires_at) if row.expires_at else None,
        max_uses=row.max_uses,
        uses=row.uses,
        revoked_at=aware(row.revoked_at) if row.revoked_at else None,
    )


_INVITE_WITH_CREATOR = select(InviteRow, col(ParticipantRow.display_name)).join(
    ParticipantRow, col(ParticipantRow.id) == col(InviteRow.created_by)
)


def _found(found: Row[InviteRow, str] | None) -> Invite | None:
    return _invite(*found) if found else None


class SqlInvites:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add(
        self,
        *,
        room_id: int,
        token_hash: str,
        created_by: int,
        now: datetime,
        expires_at: datetime | None,
        max_uses: int | None,
    ) -> Invite:
        row = InviteRow(
            room_id=room_id,
            token_hash=token_hash,
            created_by=created_by,
            created_at=now,
            expires_at=expires_at,
            max_uses=max_uses,
            uses=0,
        )
        self.s.add(row)
        self.s.flush()
        saved, creator = self.s.execute(_INVITE_WITH_CREATOR.where(col(InviteRow.id) == row.id)).one()
        return _invite(saved, creator)

    def get(self, invite_id: int) -> Invite | None:
        return _found(self.s.execute(_INVITE_WITH_CREATOR.where(col(InviteRow.id) == invite_id)).first())

    def by_hash(self, token_hash: str, *, lock: bool = False) -> Invite | None:
        stmt = _INVITE_WITH_CREATOR.where(col(InviteRow.token_hash) == token_hash)
        if lock:
            stmt = stmt.with_for_update(of=InviteRow)
        return _found(self.s.execute(stmt).first())

    def for_room(self, room_id: int) -> list[Invite]:
        stmt = _INVITE_WITH_CREATOR.where(col(InviteRow.room_id) == room_id).order_by(col(InviteRow.id).desc())
        return [_invite(row, creator) for row, creator in self.s.execute(stmt)]

    def count_used(self, invite_id: int) -> None:
        self.s.exec(update(InviteRow).where(col(InviteRow.id) == invite_id).values(uses=col(InviteRow.uses) + 1))

    def revoke_by(self, participant_id: int, now: datetime) -> int:
        """Revoke every live link a participant created (they were removed from the room)."""
        stmt = (
            update(InviteRow)
            .where(col(InviteRow.created_by) == participant_id, col(InviteRow.revoked_at).is_(None))
            .values(revoked_at=now)
        )
        return self.s.exec(stmt).rowcount or 0

    def revoke(self, invite_id: int, now: datetime) -> None:
        live = col(InviteRow.id) == invite_id, col(InviteRow.revoked_at).is_(None)
        self.s.exec(update(InviteRow).where(*live).values(revoked_at=now))

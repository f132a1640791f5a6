"""The AI replies being written, one row per room (domain/ai.py keeps one reply per room across
processes with it)."""

from __future__ import annotations

import builtins
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlmodel import Session, col

from chatapp.domain.ai_models import RunningReplyRecord
from chatapp.store.repositories.rows import aware, insert_new
from chatapp.store.tables import RunningReplyRow


def _record(row: RunningReplyRow) -> RunningReplyRecord:
    return RunningReplyRecord(
        room_id=row.room_id,
        reply_id=row.reply_id,
        origin=row.origin,
        replaces_id=row.replaces_id,
        text=row.text,
        started_at=aware(row.started_at),
        beat_at=aware(row.beat_at),
    )


class SqlRunningReplies:
    def __init__(self, session: Session) -> None:
        self.s = session

    def get(self, room_id: int) -> RunningReplyRecord | None:
        row = self.s.get(RunningReplyRow, room_id)
        return _record(row) if row is not None else None

    def add(self, record: RunningReplyRecord) -> None:
        """AlreadyExists when the room has one (a concurrent start elsewhere won)."""
        row = RunningReplyRow(
            room_id=record.room_id,
            reply_id=record.reply_id,
            origin=record.origin,
            replaces_id=record.replaces_id,
            text=record.text,
            started_at=record.started_at,
            beat_at=record.beat_at,
        )
        insert_new(self.s, row, "room_id")

    def beat(self, room_id: int, reply_id: str, text: str, now: datetime) -> bool:
        stmt = (
            update(RunningReplyRow)
            .where(col(RunningReplyRow.room_id) == room_id, col(RunningReplyRow.reply_id) == reply_id)
            .values(text=text, beat_at=now)
        )
        return self.s.execute(stmt).rowcount > 0  # type: ignore[attr-defined]

    def remove(self, room_id: int, reply_id: str) -> bool:
        stmt = delete(RunningReplyRow).where(
            col(RunningReplyRow.room_id) == room_id, col(RunningReplyRow.reply_id) == reply_id
        )
        return self.s.execute(stmt).rowcount > 0  # type: ignore[attr-defined]

    def silent_since(self, before: datetime) -> builtins.list[RunningReplyRecord]:
        stmt = select(RunningReplyRow).where(col(RunningReplyRow.beat_at) < before)
        return [_record(row) for row in self.s.execute(stmt).scalars()]

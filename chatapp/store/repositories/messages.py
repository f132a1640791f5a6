"""Messages: posting (once per client message id), AI replies, deletion, and the history reads."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BindParameter, DateTime, Executable, Integer, bindparam, func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col

from chatapp.domain.ai_models import ReplyRecord
from chatapp.domain.models import Message, MessageStatus, Participant, ParticipantKind
from chatapp.store.repositories.rows import aware, load, message_from_row, table_of
from chatapp.store.tables import MessageRow, ParticipantRow

# The hot read paths select plain columns from statements built once: loading ORM objects and
# building a select() per call cost more than the SQL itself (bench/history.py measured 2-4 ms per
# page through ORM entities against 0.1 ms of SQL).
_MESSAGE_COLUMNS = select(
    col(MessageRow.id),
    col(MessageRow.room_id),
    col(MessageRow.participant_id),
    func.coalesce(col(MessageRow.display_as), col(ParticipantRow.display_name)),
    col(ParticipantRow.kind),
    col(MessageRow.body),
    col(MessageRow.created_at),
    col(MessageRow.status),
    col(MessageRow.edited_at),
    col(MessageRow.client_message_id),
).join(ParticipantRow, col(ParticipantRow.id) == col(MessageRow.participant_id))
_MESSAGE_COLUMNS = _MESSAGE_COLUMNS.where(col(MessageRow.deleted_at).is_(None))  # deleted messages are never shown
_ROOM_ID: BindParameter[int] = bindparam("room_id")
_LIMIT = bindparam("limit", type_=Integer)
_IN_ROOM = col(MessageRow.room_id) == _ROOM_ID
_MESSAGE_BY_ID = _MESSAGE_COLUMNS.where(col(MessageRow.id) == bindparam("message_id"))
_NEWEST = _MESSAGE_COLUMNS.where(_IN_ROOM).order_by(col(MessageRow.id).desc()).limit(_LIMIT)
_NEWEST_BEFORE = (
    _MESSAGE_COLUMNS.where(_IN_ROOM, col(MessageRow.id) < bindparam("before_id"))
    .order_by(col(MessageRow.id).desc())
    .limit(_LIMIT)
)
_OLDEST_AFTER = (
    _MESSAGE_COLUMNS.where(_IN_ROOM, col(MessageRow.id) > bindparam("after_id"))
    .order_by(col(MessageRow.id))
    .limit(_LIMIT)
)

# No ORDER BY: the partial indexes find the few changed rows, and a caller that gets more than it
# asked for starts over anyway; ordering by id would let PostgreSQL's generic plans walk the room's
# (room_id, id) index instead. Sorted in Python.
_SINCE = bindparam("since", type_=DateTime(timezone=True))
_CREATED_SINCE = (
    _MESSAGE_COLUMNS.where(_IN_ROOM, col(MessageRow.created_at) >= _SINCE)
    .order_by(col(MessageRow.created_at))
    .limit(_LIMIT)
)
_EDITED_SINCE = _MESSAGE_COLUMNS.where(_IN_ROOM, col(MessageRow.edited_at) >= _SINCE).limit(_LIMIT)
_DELETED_SINCE = select(col(MessageRow.id)).where(_IN_ROOM, col(MessageRow.deleted_at) >= _SINCE).limit(_LIMIT)


def _message_from_columns(row: Sequence[Any]) -> Message:
    message_id, room_id, participant_id, author_name, author_kind, body, created_at, status, edited_at, client_id = row
    return Message(
        id=message_id,
        room_id=room_id,
        participant_id=participant_id,
        author_name=author_name,
        author_kind=ParticipantKind(author_kind),
        body=body,
        created_at=aware(created_at),
        status=MessageStatus(status or MessageStatus.COMPLETE),
        edited_at=aware(edited_at) if edited_at else None,
        client_message_id=client_id,
    )


# One statement, no ORM unit of work: posting is the hottest write (the author comes with the call).
# A message whose author already saved one under its client id is not inserted (no row comes back):
# ON CONFLICT keeps the common case at one statement and two racing resends at one row.
_MESSAGE_TABLE = table_of(MessageRow)
_INSERT_MESSAGE: dict[str, Executable] = {
    dialect: insert_for(_MESSAGE_TABLE)
    .on_conflict_do_nothing(index_elements=["participant_id", "client_message_id"])
    .returning(_MESSAGE_TABLE.c.id)
    for dialect, insert_for in (("sqlite", sqlite_insert), ("postgresql", postgresql_insert))
}
# Found whether or not it was deleted since: a resend of a deleted message is not saved again.
_BY_CLIENT_ID = (
    select(col(MessageRow.id))
    .where(
        col(MessageRow.participant_id) == bindparam("participant_id"),
        col(MessageRow.client_message_id) == bindparam("client_message_id"),
    )
    .limit(1)
)

_LATEST_BY = (
    _MESSAGE_COLUMNS.where(_IN_ROOM, col(MessageRow.participant_id) == bindparam("participant_id"))
    .order_by(col(MessageRow.id).desc())
    .limit(1)
)


class SqlMessages:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add(
        self,
        *,
        room_id: int,
        author: Participant,
        body: str,
        now: datetime,
        client_message_id: str | None = None,
        display_as: str | None = None,
    ) -> Message | None:
        values = {
            "room_id": room_id,
            "participant_id": author.id,
            "client_message_id": client_message_id,
            "display_as": display_as,
            "body": body,
            "created_at": now,
            "status": MessageStatus.COMPLETE.value,
        }
        message_id = self.s.execute(_INSERT_MESSAGE[self.s.get_bind().dialect.name], values).scalar_one_or_none()
        if message_id is None:  # this author already saved a message under that client id
            return None
        return Message(
            id=message_id,
            room_id=room_id,
            participant_id=author.id,
            author_name=display_as or author.display_name,
            author_kind=author.kind,
            body=body,
            created_at=now,
            client_message_id=client_message_id,
        )

    def add_reply(self, *, room_id: int, participant_id: int, body: str, now: datetime, record: ReplyRecord) -> Message:
        row = MessageRow(
            room_id=room_id,
            participant_id=participant_id,
            body=body,
            created_at=now,
            status=record.status.value,
            model=record.model,
            prompt_tokens=record.prompt_tokens,
            completion_tokens=record.completion_tokens,
            latency_ms=record.latency_ms,
        )
        self.s.add(row)
        self.s.flush()
        return message_from_row(row, load(self.s, ParticipantRow, participant_id))

    def replace_reply(self, message_id: int, *, body: str, now: datetime, record: ReplyRecord) -> Message | None:
        row = self.s.get(MessageRow, message_id)
        if row is None or row.deleted_at is not None:
            return None  # deleted meanwhile: it stays deleted
        row.body = body
        row.edited_at = now
        row.status = record.status.value
        row.model = record.model
        row.prompt_tokens = record.prompt_tokens
        row.completion_tokens = record.completion_tokens
        row.latency_ms = record.latency_ms
        self.s.add(row)
        self.s.flush()
        return message_from_row(row, load(self.s, ParticipantRow, row.participant_id))

    def edit(self, message_id: int, *, body: str, now: datetime) -> Message | None:
        """Replace a message's text (None when it was deleted meanwhile: it stays deleted)."""
        row = self.s.get(MessageRow, message_id)
        if row is None or row.deleted_at is not None:
            return None
        row.body, row.edited_at = body, now
        self.s.add(row)
        self.s.flush()
        return message_from_row(row, load(self.s, ParticipantRow, row.participant_id))

    def mark_deleted(self, message_id: int, *, by: int, now: datetime) -> None:
        """Delete a message: its text is erased; the row keeps when and by whom."""
        row = load(self.s, MessageRow, message_id)
        row.body, row.deleted_at, row.deleted_by = "", now, by
        self.s.add(row)
        self.s.flush()

    def id_for_client_id(self, participant_id: int, client_message_id: str) -> int | None:
        params = {"participant_id": participant_id, "client_message_id": client_message_id}
        return self.s.execute(_BY_CLIENT_ID, params).scalar_one_or_none()

    def latest_by(self, room_id: int, participant_id: int) -> Message | None:
        found = self._rows(_LATEST_BY, room_id=room_id, participant_id=participant_id)
        return found[0] if found else None

    def _rows(self, stmt: Executable, **params: object) -> list[Message]:
        return [_message_from_columns(row) for row in self.s.execute(stmt, params)]

    def get(self, message_id: int) -> Message | None:
        found = self._rows(_MESSAGE_BY_ID, message_id=message_id)
        return found[0] if found else None

    def newest_before(self, room_id: int, before_id: int | None, limit: int) -> list[Message]:
        if before_id is None:
            return self._rows(_NEWEST, room_id=room_id, limit=limit)
        return self._rows(_NEWEST_BEFORE, room_id=room_id, before_id=before_id, limit=limit)

    def oldest_after(self, room_id: int, after_id: int, limit: int) -> list[Message]:
        return self._rows(_OLDEST_AFTER, room_id=room_id, after_id=after_id, limit=limit)

    def created_since(self, room_id: int, since: datetime, limit: int) -> list[Message]:
        found = self._rows(_CREATED_SINCE, room_id=room_id, since=since.astimezone(UTC), limit=limit)
        return sorted(found, key=lambda message: message.id)

    def edited_since(self, room_id: int, since: datetime, limit: int) -> list[Message]:
        found = self._rows(_EDITED_SINCE, room_id=room_id, since=since.astimezone(UTC), limit=limit)
        return sorted(found, key=lambda message: message.id)

    def deleted_since(self, room_id: int, since: datetime, limit: int) -> list[int]:
        params = {"room_id": room_id, "since": since.astimezone(UTC), "limit": limit}
        return sorted(self.s.execute(_DELETED_SINCE, params).scalars())

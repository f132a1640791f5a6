"""Table rows to domain objects, and the query pieces several repositories share."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Row, Table
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, col

from chatapp.domain.errors import AlreadyExists
from chatapp.domain.models import (
    Actor,
    AiMode,
    BotCalls,
    Message,
    MessageStatus,
    Participant,
    ParticipantKind,
    ParticipantState,
    Role,
    Room,
    User,
    Visibility,
)
from chatapp.store.tables import MessageRow, ParticipantRow, RoomRow, UserRow

R = TypeVar("R", bound=SQLModel)


def aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def saved_id(row_id: int | None) -> int:
    """The primary key of a row read from the database or flushed to it (only a new row has none)."""
    if row_id is None:
        raise LookupError("the row has no id: it was never flushed")
    return row_id


def load(session: Session, table: type[R], row_id: int) -> R:
    """The row with this primary key, for callers that know it exists (LookupError otherwise)."""
    row = session.get(table, row_id)
    if row is None:
        raise LookupError(f"no {table.__name__} with id {row_id}")
    return row


def insert_new(session: Session, row: SQLModel, key: str) -> None:
    """Add the row and write it now; AlreadyExists (naming `key`) when a unique constraint refuses it."""
    session.add(row)
    try:
        session.flush()
    except IntegrityError as exc:
        raise AlreadyExists(key) from exc


def table_of(model: type[SQLModel]) -> Table:
    """The Core table behind a table class, for statements built from plain columns."""
    return SQLModel.metadata.tables[str(model.__tablename__)]


def user_from_row(row: UserRow) -> User:
    """The domain user of a users row."""
    return User(
        id=saved_id(row.id),
        username=row.username,
        display_name=row.display_name,
        created_at=aware(row.created_at),
        bot_owner_id=row.bot_owner_id,
    )


def room_from_row(row: RoomRow | Row[Any]) -> Room:
    """The domain room of a rooms row (an entity, or a result row with the same columns)."""
    return Room(
        id=saved_id(row.id),
        name=row.name,
        topic=row.topic,
        visibility=Visibility(row.visibility),
        created_at=aware(row.created_at),
        ai_mode=AiMode(row.ai_mode) if row.ai_mode else AiMode.MENTION,
        members_can_invite=bool(row.members_can_invite),
        guests_can_use_ai=bool(row.guests_can_use_ai),
        signed_up_guests_become_members=bool(row.signed_up_guests_become_members),
    )


def participant_from_row(row: ParticipantRow | SimpleNamespace) -> Participant:
    """The domain participant of a participants row (an entity, or its columns as attributes)."""
    return Participant(
        id=saved_id(row.id),
        room_id=row.room_id,
        kind=ParticipantKind(row.kind),
        display_name=row.display_name,
        role=Role(row.role),
        joined_at=aware(row.joined_at),
        user_id=row.user_id,
        guest_id=row.guest_id,
        state=ParticipantState(row.state),
        invite_id=row.invite_id,
        removed_by=row.removed_by,
        bot_calls=BotCalls(getattr(row, "bot_calls", None) or BotCalls.MENTION),
    )


def message_from_row(row: MessageRow, author: ParticipantRow) -> Message:
    """The domain message of a messages row and its author's participants row."""
    return Message(
        id=saved_id(row.id),
        room_id=row.room_id,
        participant_id=row.participant_id,
        author_name=row.display_as or author.display_name,
        author_kind=ParticipantKind(author.kind),
        body=row.body,
        created_at=aware(row.created_at),
        status=MessageStatus(row.status or MessageStatus.COMPLETE),
        edited_at=aware(row.edited_at) if row.edited_at else None,
        client_message_id=row.client_message_id,
    )


ACTIVE = col(ParticipantRow.state) == ParticipantState.ACTIVE.value


def is_actor(actor: Actor) -> ColumnElement[bool]:
    """The condition "this participant row is the actor's"."""
    if actor.guest_id is not None:
        return col(ParticipantRow.guest_id) == actor.guest_id
    return col(ParticipantRow.user_id) == actor.user_id

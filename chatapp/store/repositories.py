"""Repositories: SQL behind the domain's ports; they return plain domain objects."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

from sqlalchemy import DateTime, Integer, Select, and_, bindparam, exists, func, insert, literal, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlmodel import Session, delete

from chatapp.domain.errors import Conflict, ValidationError
from chatapp.domain.models import (
    Actor,
    AiMode,
    Invite,
    Message,
    MessageStatus,
    ModelUsage,
    Participant,
    ParticipantKind,
    ParticipantState,
    ReplyRecord,
    Role,
    Room,
    RoomAiSettings,
    RoomOptions,
    RoomSummary,
    UsageRecord,
    User,
    UserCredentials,
    Visibility,
)
from chatapp.store.tables import (
    AiUsageRow,
    GuestRow,
    GuestSessionRow,
    InviteRow,
    MessageRow,
    ParticipantRow,
    RoomRow,
    SessionRow,
    UserRow,
)


def aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _user(row: UserRow) -> User:
    return User(id=row.id, username=row.username, display_name=row.display_name, created_at=aware(row.created_at))


def _room(row: RoomRow) -> Room:
    return Room(
        id=row.id,
        name=row.name,
        topic=row.topic,
        visibility=Visibility(row.visibility),
        created_at=aware(row.created_at),
        ai_mode=AiMode(row.ai_mode) if row.ai_mode else AiMode.MENTION,
        members_can_invite=bool(row.members_can_invite),
        guests_can_use_ai=bool(row.guests_can_use_ai),
        signed_up_guests_become_members=bool(row.signed_up_guests_become_members),
    )


def _participant(row: ParticipantRow) -> Participant:
    return Participant(
        id=row.id,
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
    )


def _message(row: MessageRow, author: ParticipantRow) -> Message:
    return Message(
        id=row.id,
        room_id=row.room_id,
        participant_id=row.participant_id,
        author_name=author.display_name,
        author_kind=ParticipantKind(author.kind),
        body=row.body,
        created_at=aware(row.created_at),
        status=MessageStatus(row.status or MessageStatus.COMPLETE),
        edited_at=aware(row.edited_at) if row.edited_at else None,
    )


class SqlUsers:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add(self, *, username: str, display_name: str, password_hash: str, now: datetime) -> User:
        row = UserRow(
            username=username, display_name=display_name, password_hash=password_hash, created_at=now, updated_at=now
        )
        self.s.add(row)
        try:
            self.s.flush()
        except IntegrityError as exc:
            raise ValidationError({"username": "That username is taken."}) from exc
        return _user(row)

    def get(self, user_id: int) -> User | None:
        row = self.s.get(UserRow, user_id)
        return _user(row) if row else None

    def credentials_by_username(self, username: str) -> UserCredentials | None:
        row = self.s.exec(select(UserRow).where(UserRow.username == username)).scalars().first()
        return UserCredentials(user=_user(row), password_hash=row.password_hash) if row else None

    def credentials(self, user_id: int, *, lock: bool = False) -> UserCredentials | None:
        # lock: SELECT ... FOR UPDATE on PostgreSQL; SQLite writers already hold the database lock.
        row = self.s.get(UserRow, user_id, with_for_update=lock, populate_existing=lock)
        return UserCredentials(user=_user(row), password_hash=row.password_hash) if row else None

    def set_display_name(self, user_id: int, display_name: str, now: datetime) -> None:
        self._update(user_id, now, display_name=display_name)

    def set_password_hash(self, user_id: int, password_hash: str, now: datetime) -> None:
        self._update(user_id, now, password_hash=password_hash)

    def _update(self, user_id: int, now: datetime, **values: str) -> None:
        self.s.execute(update(UserRow).where(UserRow.id == user_id).values(**values, updated_at=now))


class SqlSessions:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add(self, *, user_id: int, token_hash: str, created_at: datetime, expires_at: datetime) -> int:
        row = SessionRow(user_id=user_id, token_hash=token_hash, created_at=created_at, expires_at=expires_at)
        self.s.add(row)
        self.s.flush()
        return row.id

    def actor_for(self, token_hash: str, now: datetime) -> Actor | None:
        stmt = (
            select(SessionRow.expires_at, UserRow)
            .join(UserRow, UserRow.id == SessionRow.user_id)
            .where(SessionRow.token_hash == token_hash)
        )
        found = self.s.exec(stmt).first()
        if found is None or aware(found.expires_at) <= now:
            return None
        user = found.UserRow
        return Actor(user_id=user.id, username=user.username, display_name=user.display_name)

    def delete_by_hash(self, token_hash: str) -> int | None:
        row = self.s.exec(select(SessionRow).where(SessionRow.token_hash == token_hash)).scalars().first()
        if row is None:
            return None
        self.s.delete(row)
        return row.user_id

    def delete_for_user(self, user_id: int) -> int:
        result = self.s.exec(delete(SessionRow).where(SessionRow.user_id == user_id))
        return result.rowcount or 0

    def delete_expired_for_user(self, user_id: int, now: datetime) -> int:
        stmt = delete(SessionRow).where(SessionRow.user_id == user_id, SessionRow.expires_at <= now)
        return self.s.exec(stmt).rowcount or 0


_ACTIVE = ParticipantRow.state == ParticipantState.ACTIVE.value


_ROOMS, _PARTICIPANTS = RoomRow.__table__, ParticipantRow.__table__
_AS_PARTICIPANT = "p_"  # the participant's columns in the access query, prefixed


def _room_with(who: str) -> Select:
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


def _participant_in(row) -> Participant | None:
    """The prefixed participant columns of an access-query row, if the outer join found one."""
    values = {
        key[len(_AS_PARTICIPANT) :]: value for key, value in row._mapping.items() if key.startswith(_AS_PARTICIPANT)
    }
    return _participant(SimpleNamespace(**values)) if values["id"] is not None else None


def _is(actor: Actor):
    """The condition "this participant row is the actor's"."""
    if actor.guest_id is not None:
        return ParticipantRow.guest_id == actor.guest_id
    return ParticipantRow.user_id == actor.user_id


class SqlRooms:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add(self, *, name: str, topic: str, visibility: Visibility, now: datetime) -> Room:
        row = RoomRow(name=name, topic=topic, visibility=visibility.value, created_at=now)
        self.s.add(row)
        self.s.flush()
        return _room(row)

    def get(self, room_id: int) -> Room | None:
        row = self.s.get(RoomRow, room_id)
        return _room(row) if row else None

    def ai_settings(self, room_id: int) -> RoomAiSettings:
        row = self.s.get(RoomRow, room_id)
        return RoomAiSettings(mode=AiMode(row.ai_mode), instruction=row.ai_instruction, model=row.ai_model)

    def set_ai_settings(self, room_id: int, settings: RoomAiSettings) -> None:
        row = self.s.get(RoomRow, room_id)
        row.ai_mode = settings.mode.value
        row.ai_instruction = settings.instruction
        row.ai_model = settings.model
        self.s.add(row)
        self.s.flush()

    def lock(self, room_id: int) -> None:
        """Hold the room's row until the transaction ends (PostgreSQL; SQLite writers are serialised
        anyway), so checks such as "is another owner left?" cannot race."""
        self.s.execute(select(RoomRow.id).where(RoomRow.id == room_id).with_for_update())

    def delete(self, room_id: int) -> None:
        """Delete the room; its participants, messages, links and usage go with it (ON DELETE CASCADE)."""
        self.s.execute(delete(RoomRow).where(RoomRow.id == room_id))

    def set_details(self, room_id: int, *, name: str, topic: str) -> Room:
        row = self.s.get(RoomRow, room_id)
        row.name, row.topic = name, topic
        self.s.add(row)
        self.s.flush()
        return self.get(room_id)

    def set_options(self, room_id: int, options: RoomOptions) -> None:
        row = self.s.get(RoomRow, room_id)
        row.members_can_invite = options.members_can_invite
        row.guests_can_use_ai = options.guests_can_use_ai
        row.signed_up_guests_become_members = options.signed_up_guests_become_members
        self.s.add(row)
        self.s.flush()

    def with_participant(self, room_id: int, actor: Actor) -> tuple[Room, Participant | None] | None:
        if actor.guest_id is not None:
            stmt, who = _ROOM_WITH_GUEST, actor.guest_id
        else:
            stmt, who = _ROOM_WITH_USER, actor.user_id
        found = self.s.execute(stmt, {"room_id": room_id, "who": who}).first()
        if found is None:
            return None
        return _room(found), _participant_in(found)

    def summaries_for(self, actor: Actor) -> list[RoomSummary]:
        last_id = (
            select(func.max(MessageRow.id))
            .where(MessageRow.room_id == RoomRow.id, MessageRow.deleted_at.is_(None))
            .correlate(RoomRow)
            .scalar_subquery()
        )
        author = aliased(ParticipantRow)
        stmt = (
            select(RoomRow, ParticipantRow.role, MessageRow, author)
            .join(ParticipantRow, and_(ParticipantRow.room_id == RoomRow.id, _is(actor), _ACTIVE))
            .outerjoin(MessageRow, MessageRow.id == last_id)
            .outerjoin(author, author.id == MessageRow.participant_id)
            .order_by(func.coalesce(MessageRow.created_at, RoomRow.created_at).desc(), RoomRow.id.desc())
        )
        return [
            RoomSummary(
                room=_room(room),
                role=Role(role),
                last_message=_message(message, who) if message is not None else None,
            )
            for room, role, message, who in self.s.exec(stmt).all()
        ]

    def public_not_joined(self, actor: Actor, limit: int) -> list[Room]:
        # rooms they are in, and rooms they were removed from (they cannot join those)
        mine = select(ParticipantRow.room_id).where(_is(actor), ParticipantRow.state != ParticipantState.LEFT.value)
        stmt = (
            select(RoomRow)
            .where(RoomRow.visibility == Visibility.PUBLIC.value, RoomRow.id.not_in(mine))
            .order_by(RoomRow.id.desc())
            .limit(limit)
        )
        return [_room(row) for row in self.s.exec(stmt).scalars().all()]


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
        self.s.add(row)
        try:
            self.s.flush()
        except IntegrityError as exc:
            raise Conflict("Already in this room.") from exc
        return _participant(row)

    def for_user(self, room_id: int, user_id: int) -> Participant | None:
        stmt = select(ParticipantRow).where(ParticipantRow.room_id == room_id, ParticipantRow.user_id == user_id)
        row = self.s.exec(stmt).scalars().first()
        return _participant(row) if row else None

    def membership(self, room_id: int, actor: Actor) -> Participant | None:
        """The actor's participant in the room whatever its state (left, removed), if any."""
        row = self.s.exec(select(ParticipantRow).where(ParticipantRow.room_id == room_id, _is(actor))).scalars().first()
        return _participant(row) if row else None

    def get(self, participant_id: int) -> Participant | None:
        row = self.s.get(ParticipantRow, participant_id)
        return _participant(row) if row else None

    def set_role(self, participant_id: int, role: Role) -> Participant:
        row = self.s.get(ParticipantRow, participant_id)
        row.role = role.value
        self.s.add(row)
        self.s.flush()
        return _participant(row)

    def set_state(
        self,
        participant_id: int,
        state: ParticipantState,
        *,
        removed_by: int | None = None,
        now: datetime | None = None,
        invite_id: int | None = None,
    ) -> Participant:
        row = self.s.get(ParticipantRow, participant_id)
        row.state = state.value
        row.removed_by = removed_by
        if state is ParticipantState.ACTIVE and now is not None:
            row.joined_at = now
            row.invite_id = invite_id
        self.s.add(row)
        self.s.flush()
        return _participant(row)

    def count_owners(self, room_id: int) -> int:
        stmt = select(func.count()).where(
            ParticipantRow.room_id == room_id, ParticipantRow.role == Role.OWNER.value, _ACTIVE
        )
        return int(self.s.execute(stmt).scalar_one())

    def convert_guest(self, guest_id: int, user_id: int) -> list[int]:
        """A guest signed up: their participants become the new user's, keeping the guest role except
        in rooms that make guests who sign up members; returns the ids of their rooms."""
        stmt = select(ParticipantRow, RoomRow.signed_up_guests_become_members).join(
            RoomRow, RoomRow.id == ParticipantRow.room_id
        )
        rows = self.s.exec(stmt.where(ParticipantRow.guest_id == guest_id)).all()
        for row, become_members in rows:
            row.kind, row.user_id, row.guest_id = ParticipantKind.USER.value, user_id, None
            if row.role == Role.GUEST.value and become_members:
                row.role = Role.MEMBER.value
            self.s.add(row)
        self.s.flush()
        return [row.room_id for row, _ in rows]

    def ai_of(self, room_id: int) -> Participant | None:
        stmt = select(ParticipantRow).where(
            ParticipantRow.room_id == room_id, ParticipantRow.kind == ParticipantKind.AI.value
        )
        row = self.s.exec(stmt.order_by(ParticipantRow.id)).scalars().first()
        return _participant(row) if row else None

    def sync_ai(self, *, display_name: str, now: datetime) -> int:
        """Give every room its AI participant, named display_name; returns how many rooms got one.

        Reads first and writes only what is missing or renamed, so a start-up with nothing to do
        writes nothing."""
        is_ai = ParticipantRow.kind == ParticipantKind.AI.value
        renamed = select(ParticipantRow.id).where(is_ai, ParticipantRow.display_name != display_name).limit(1)
        if self.s.execute(renamed).first() is not None:
            self.s.execute(update(ParticipantRow).where(is_ai).values(display_name=display_name))
        has_ai = exists().where(ParticipantRow.room_id == RoomRow.id, is_ai)
        if self.s.execute(select(RoomRow.id).where(~has_ai).limit(1)).first() is None:
            return 0
        missing = select(
            RoomRow.id,
            literal(ParticipantKind.AI.value, ParticipantRow.kind.type),
            literal(display_name, ParticipantRow.display_name.type),
            literal(Role.MEMBER.value, ParticipantRow.role.type),
            literal(now, ParticipantRow.joined_at.type),
        ).where(~has_ai)
        columns = ["room_id", "kind", "display_name", "role", "joined_at"]
        return self.s.execute(insert(ParticipantRow).from_select(columns, missing)).rowcount or 0

    def rename_user(self, user_id: int, display_name: str) -> list[int]:
        """The user's participants take the new name; returns the rooms they are active in."""
        self.s.execute(
            update(ParticipantRow).where(ParticipantRow.user_id == user_id).values(display_name=display_name)
        )
        stmt = select(ParticipantRow.room_id).where(ParticipantRow.user_id == user_id, _ACTIVE)
        return list(self.s.execute(stmt).scalars())

    def count_by_invite(self, invite_id: int, *, excluding: int) -> int:
        stmt = select(func.count()).where(
            ParticipantRow.invite_id == invite_id,
            ParticipantRow.id != excluding,
            ParticipantRow.state != ParticipantState.REMOVED.value,
        )
        return int(self.s.execute(stmt).scalar_one())

    def removed(self, room_id: int) -> list[Participant]:
        stmt = select(ParticipantRow).where(
            ParticipantRow.room_id == room_id, ParticipantRow.state == ParticipantState.REMOVED.value
        )
        rows = self.s.exec(stmt).scalars().all()
        return [_participant(row) for row in sorted(rows, key=lambda row: (row.display_name.lower(), row.id))]

    def list(self, room_id: int) -> list[Participant]:
        rank = {Role.OWNER.value: 0, Role.MODERATOR.value: 1, Role.MEMBER.value: 3, Role.GUEST.value: 4}
        rows = self.s.exec(select(ParticipantRow).where(ParticipantRow.room_id == room_id, _ACTIVE)).scalars().all()

        def order(row: ParticipantRow) -> tuple:  # owners, moderators, the AI, members, guests; by name
            place = 2 if row.kind == ParticipantKind.AI.value else rank.get(row.role, 9)
            return place, row.display_name.lower(), row.id

        ordered = sorted(rows, key=order)
        return [_participant(row) for row in ordered]

    def display_names(self, room_id: int) -> list[str]:
        stmt = select(ParticipantRow.display_name).where(ParticipantRow.room_id == room_id)
        return list(self.s.execute(stmt).scalars())


# The hot read paths select plain columns from statements built once: loading ORM objects and
# building a select() per call cost more than the SQL itself (bench/history.py measured 2-4 ms per
# page through ORM entities against 0.1 ms of SQL).
_MESSAGE_COLUMNS = select(
    MessageRow.id,
    MessageRow.room_id,
    MessageRow.participant_id,
    ParticipantRow.display_name,
    ParticipantRow.kind,
    MessageRow.body,
    MessageRow.created_at,
    MessageRow.status,
    MessageRow.edited_at,
).join(ParticipantRow, ParticipantRow.id == MessageRow.participant_id)
_MESSAGE_COLUMNS = _MESSAGE_COLUMNS.where(MessageRow.deleted_at.is_(None))  # deleted messages are never shown
_ROOM_ID, _LIMIT = bindparam("room_id"), bindparam("limit", type_=Integer)
_MESSAGE_BY_ID = _MESSAGE_COLUMNS.where(MessageRow.id == bindparam("message_id"))
_NEWEST = _MESSAGE_COLUMNS.where(MessageRow.room_id == _ROOM_ID).order_by(MessageRow.id.desc()).limit(_LIMIT)
_NEWEST_BEFORE = (
    _MESSAGE_COLUMNS.where(MessageRow.room_id == _ROOM_ID, MessageRow.id < bindparam("before_id"))
    .order_by(MessageRow.id.desc())
    .limit(_LIMIT)
)
_OLDEST_AFTER = (
    _MESSAGE_COLUMNS.where(MessageRow.room_id == _ROOM_ID, MessageRow.id > bindparam("after_id"))
    .order_by(MessageRow.id)
    .limit(_LIMIT)
)

# No ORDER BY: the partial indexes find the few changed rows, and a caller that gets more than it
# asked for starts over anyway; ordering by id would let PostgreSQL's generic plans walk the room's
# (room_id, id) index instead. Sorted in Python.
_SINCE = bindparam("since", type_=DateTime(timezone=True))
_EDITED_SINCE = _MESSAGE_COLUMNS.where(MessageRow.room_id == _ROOM_ID, MessageRow.edited_at >= _SINCE).limit(_LIMIT)
_DELETED_SINCE = (
    select(MessageRow.id).where(MessageRow.room_id == _ROOM_ID, MessageRow.deleted_at >= _SINCE).limit(_LIMIT)
)


def _message_from_columns(row) -> Message:
    message_id, room_id, participant_id, author_name, author_kind, body, created_at, status, edited_at = row
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
    )


# One statement, no ORM unit of work: posting is the hottest write (the author comes with the call).
# A message whose author already saved one under its client id is not inserted (no row comes back):
# ON CONFLICT keeps the common case at one statement and two racing resends at one row.
_MESSAGE_TABLE = MessageRow.__table__
_INSERT_MESSAGE = {
    dialect: insert_for(_MESSAGE_TABLE)
    .on_conflict_do_nothing(index_elements=["participant_id", "client_message_id"])
    .returning(_MESSAGE_TABLE.c.id)
    for dialect, insert_for in (("sqlite", sqlite_insert), ("postgresql", postgresql_insert))
}
# Found whether or not it was deleted since: a resend of a deleted message is not saved again.
_BY_CLIENT_ID = (
    select(MessageRow.id)
    .where(
        MessageRow.participant_id == bindparam("participant_id"),
        MessageRow.client_message_id == bindparam("client_message_id"),
    )
    .limit(1)
)

_LATEST_BY = (
    _MESSAGE_COLUMNS.where(MessageRow.room_id == _ROOM_ID, MessageRow.participant_id == bindparam("participant_id"))
    .order_by(MessageRow.id.desc())
    .limit(1)
)


class SqlMessages:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add(
        self, *, room_id: int, author: Participant, body: str, now: datetime, client_message_id: str | None = None
    ) -> Message | None:
        values = {
            "room_id": room_id,
            "participant_id": author.id,
            "client_message_id": client_message_id,
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
            author_name=author.display_name,
            author_kind=author.kind,
            body=body,
            created_at=now,
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
        return _message(row, self.s.get(ParticipantRow, participant_id))

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
        return _message(row, self.s.get(ParticipantRow, row.participant_id))

    def mark_deleted(self, message_id: int, *, by: int, now: datetime) -> None:
        """Delete a message: its text is erased; the row keeps when and by whom."""
        row = self.s.get(MessageRow, message_id)
        row.body, row.deleted_at, row.deleted_by = "", now, by
        self.s.add(row)
        self.s.flush()

    def id_for_client_id(self, participant_id: int, client_message_id: str) -> int | None:
        params = {"participant_id": participant_id, "client_message_id": client_message_id}
        return self.s.execute(_BY_CLIENT_ID, params).scalar_one_or_none()

    def latest_by(self, room_id: int, participant_id: int) -> Message | None:
        found = self._rows(_LATEST_BY, room_id=room_id, participant_id=participant_id)
        return found[0] if found else None

    def _rows(self, stmt, **params) -> list[Message]:
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

    def edited_since(self, room_id: int, since: datetime, limit: int) -> list[Message]:
        found = self._rows(_EDITED_SINCE, room_id=room_id, since=since.astimezone(UTC), limit=limit)
        return sorted(found, key=lambda message: message.id)

    def deleted_since(self, room_id: int, since: datetime, limit: int) -> list[int]:
        params = {"room_id": room_id, "since": since.astimezone(UTC), "limit": limit}
        return sorted(self.s.execute(_DELETED_SINCE, params).scalars())


class SqlGuests:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add(self, *, display_name: str, now: datetime) -> int:
        row = GuestRow(display_name=display_name, created_at=now)
        self.s.add(row)
        self.s.flush()
        return row.id

    def add_session(self, *, guest_id: int, token_hash: str, created_at: datetime, expires_at: datetime) -> None:
        self.s.add(
            GuestSessionRow(guest_id=guest_id, token_hash=token_hash, created_at=created_at, expires_at=expires_at)
        )
        self.s.flush()

    def actor_for(self, token_hash: str, now: datetime) -> Actor | None:
        stmt = (
            select(GuestSessionRow.expires_at, GuestRow)
            .join(GuestRow, GuestRow.id == GuestSessionRow.guest_id)
            .where(GuestSessionRow.token_hash == token_hash)
        )
        found = self.s.exec(stmt).first()
        if found is None or aware(found.expires_at) <= now:
            return None
        guest = found.GuestRow
        return Actor(user_id=None, username="", display_name=guest.display_name, guest_id=guest.id)

    def delete_session(self, token_hash: str) -> int | None:
        row = self.s.exec(select(GuestSessionRow).where(GuestSessionRow.token_hash == token_hash)).scalars().first()
        if row is None:
            return None
        self.s.delete(row)
        return row.guest_id

    def delete_sessions(self, guest_id: int) -> int:
        return self.s.exec(delete(GuestSessionRow).where(GuestSessionRow.guest_id == guest_id)).rowcount or 0

    def has_live_session(self, guest_id: int, now: datetime) -> bool:
        stmt = select(GuestSessionRow.id).where(GuestSessionRow.guest_id == guest_id, GuestSessionRow.expires_at > now)
        return self.s.execute(stmt.limit(1)).first() is not None


def _invite(row: InviteRow, creator: str) -> Invite:
    return Invite(
        id=row.id,
        room_id=row.room_id,
        created_by=row.created_by,
        created_by_name=creator,
        created_at=aware(row.created_at),
        expires_at=aware(row.expires_at) if row.expires_at else None,
        max_uses=row.max_uses,
        uses=row.uses,
        revoked_at=aware(row.revoked_at) if row.revoked_at else None,
    )


_INVITE_WITH_CREATOR = select(InviteRow, ParticipantRow.display_name).join(
    ParticipantRow, ParticipantRow.id == InviteRow.created_by
)


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
        return self.get(row.id)

    def get(self, invite_id: int) -> Invite | None:
        found = self.s.execute(_INVITE_WITH_CREATOR.where(InviteRow.id == invite_id)).first()
        return _invite(*found) if found else None

    def by_hash(self, token_hash: str, *, lock: bool = False) -> Invite | None:
        stmt = _INVITE_WITH_CREATOR.where(InviteRow.token_hash == token_hash)
        if lock:
            stmt = stmt.with_for_update(of=InviteRow)
        found = self.s.execute(stmt).first()
        return _invite(*found) if found else None

    def for_room(self, room_id: int) -> list[Invite]:
        stmt = _INVITE_WITH_CREATOR.where(InviteRow.room_id == room_id).order_by(InviteRow.id.desc())
        return [_invite(row, creator) for row, creator in self.s.execute(stmt)]

    def count_used(self, invite_id: int) -> None:
        self.s.execute(update(InviteRow).where(InviteRow.id == invite_id).values(uses=InviteRow.uses + 1))

    def revoke_by(self, participant_id: int, now: datetime) -> int:
        """Revoke every live link a participant created (they were removed from the room)."""
        stmt = (
            update(InviteRow)
            .where(InviteRow.created_by == participant_id, InviteRow.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return self.s.execute(stmt).rowcount or 0

    def revoke(self, invite_id: int, now: datetime) -> None:
        self.s.execute(
            update(InviteRow).where(InviteRow.id == invite_id, InviteRow.revoked_at.is_(None)).values(revoked_at=now)
        )


class SqlAiUsage:
    def __init__(self, session: Session) -> None:
        self.s = session

    def record(self, *, room_id: int, usage: UsageRecord, now: datetime) -> None:
        self.s.add(
            AiUsageRow(
                room_id=room_id,
                model=usage.model,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                cost_usd=usage.cost_usd,
                estimated=usage.estimated,
                created_at=now,
            )
        )
        self.s.flush()

    def for_room(self, room_id: int) -> list[ModelUsage]:
        unpriced = func.sum(func.cast(AiUsageRow.cost_usd.is_(None), Integer))
        stmt = (
            select(
                AiUsageRow.model,
                func.count(),
                func.sum(AiUsageRow.prompt_tokens),
                func.sum(AiUsageRow.completion_tokens),
                func.sum(AiUsageRow.cost_usd),
                unpriced,
            )
            .where(AiUsageRow.room_id == room_id)
            .group_by(AiUsageRow.model)
            .order_by(AiUsageRow.model)
        )
        return [
            ModelUsage(
                model=model,
                replies=replies,
                prompt_tokens=int(prompt or 0),
                completion_tokens=int(completion or 0),
                cost_usd=float(cost) if cost is not None and not missing_prices else None,
            )
            for model, replies, prompt, completion, cost, missing_prices in self.s.execute(stmt)
        ]


class SqlUnitOfWork:
    """One session's worth of repositories (implements the domain's UnitOfWork port)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.users = SqlUsers(session)
        self.sessions = SqlSessions(session)
        self.rooms = SqlRooms(session)
        self.participants = SqlParticipants(session)
        self.messages = SqlMessages(session)
        self.ai_usage = SqlAiUsage(session)
        self.guests = SqlGuests(session)
        self.invites = SqlInvites(session)

"""SQLModel tables. The schema itself is owned by the Alembic migrations next to this file."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime, ForeignKey, Index, UniqueConstraint, text
from sqlalchemy import false as sa_false
from sqlalchemy import true as sa_true
from sqlmodel import Field, SQLModel


def _ts() -> Column:
    return Column(DateTime(timezone=True), nullable=False)


class UserRow(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=32, unique=True, nullable=False)
    display_name: str = Field(max_length=64, nullable=False)
    password_hash: str = Field(max_length=255, nullable=False)
    created_at: datetime = Field(sa_column=_ts())
    updated_at: datetime = Field(sa_column=_ts())
    bot_owner_id: int | None = Field(
        default=None,
        index=True,
        sa_column_args=[ForeignKey("users.id", name="fk_users_bot_owner_id", ondelete="CASCADE")],
    )


class ApiTokenRow(SQLModel, table=True):
    """A personal access token of a person or a bot; only the SHA-256 of its value is stored."""

    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", nullable=False, index=True, ondelete="CASCADE")
    name: str = Field(max_length=64, nullable=False)
    scopes: str = Field(max_length=64, nullable=False)  # space-separated, e.g. "read write"
    token_hash: str = Field(max_length=64, unique=True, nullable=False)
    prefix: str = Field(max_length=16, nullable=False)
    created_at: datetime = Field(sa_column=_ts())
    expires_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    last_used_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))


class SessionRow(SQLModel, table=True):
    __tablename__ = "sessions"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", nullable=False, index=True, ondelete="CASCADE")
    token_hash: str = Field(max_length=64, unique=True, nullable=False)
    created_at: datetime = Field(sa_column=_ts())
    expires_at: datetime = Field(sa_column=_ts())


class GuestRow(SQLModel, table=True):
    """Someone without an account who joined by an invite link (one per browser)."""

    __tablename__ = "guests"

    id: int | None = Field(default=None, primary_key=True)
    display_name: str = Field(max_length=64, nullable=False)
    created_at: datetime = Field(sa_column=_ts())


class GuestSessionRow(SQLModel, table=True):
    __tablename__ = "guest_sessions"

    id: int | None = Field(default=None, primary_key=True)
    guest_id: int = Field(foreign_key="guests.id", nullable=False, index=True, ondelete="CASCADE")
    token_hash: str = Field(max_length=64, unique=True, nullable=False)
    created_at: datetime = Field(sa_column=_ts())
    expires_at: datetime = Field(sa_column=_ts())


class RoomRow(SQLModel, table=True):
    __tablename__ = "rooms"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, nullable=False)
    topic: str = Field(default="", max_length=5000, nullable=False)
    visibility: str = Field(max_length=16, nullable=False, index=True)
    created_at: datetime = Field(sa_column=_ts())
    ai_mode: str = Field(
        default="mention", max_length=16, nullable=False, sa_column_kwargs={"server_default": "mention"}
    )
    ai_instruction: str = Field(default="", max_length=2000, nullable=False)
    ai_model: str | None = Field(default=None, max_length=200)
    members_can_invite: bool = Field(default=False, nullable=False, sa_column_kwargs={"server_default": sa_false()})
    guests_can_use_ai: bool = Field(default=True, nullable=False, sa_column_kwargs={"server_default": sa_true()})
    signed_up_guests_become_members: bool = Field(
        default=False, nullable=False, sa_column_kwargs={"server_default": sa_false()}
    )


class ParticipantRow(SQLModel, table=True):
    __tablename__ = "participants"
    __table_args__ = (
        UniqueConstraint("room_id", "user_id", name="uq_participants_room_user"),
        UniqueConstraint("room_id", "guest_id", name="uq_participants_room_guest"),
        Index(
            "uq_participants_one_ai_per_room",
            "room_id",
            unique=True,
            sqlite_where=text("kind = 'ai'"),
            postgresql_where=text("kind = 'ai'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    room_id: int = Field(foreign_key="rooms.id", nullable=False, index=True, ondelete="CASCADE")
    kind: str = Field(max_length=16, nullable=False)
    user_id: int | None = Field(default=None, foreign_key="users.id", index=True, ondelete="CASCADE")
    guest_id: int | None = Field(
        default=None, index=True, sa_column_args=[ForeignKey("guests.id", name="fk_participants_guest_id")]
    )
    display_name: str = Field(max_length=64, nullable=False)
    role: str = Field(max_length=16, nullable=False)
    joined_at: datetime = Field(sa_column=_ts())
    state: str = Field(default="active", max_length=16, nullable=False, sa_column_kwargs={"server_default": "active"})
    removed_by: int | None = Field(default=None)  # the participant who removed them
    invite_id: int | None = Field(default=None, index=True)  # the link they came in by
    bot_calls: str = Field(
        default="mention", max_length=16, nullable=False, sa_column_kwargs={"server_default": "mention"}
    )


class MessageRow(SQLModel, table=True):
    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_room_id_id", "room_id", "id"),
        # What a view may have missed after a gap in the bus: messages written since then, whatever their id.
        Index("ix_messages_room_created", "room_id", "created_at"),
        # What a reconnecting tab missed besides new messages: few rows are ever edited or deleted.
        Index(
            "ix_messages_room_edited",
            "room_id",
            "edited_at",
            sqlite_where=text("edited_at IS NOT NULL"),
            postgresql_where=text("edited_at IS NOT NULL"),
        ),
        Index(
            "ix_messages_room_deleted",
            "room_id",
            "deleted_at",
            sqlite_where=text("deleted_at IS NOT NULL"),
            postgresql_where=text("deleted_at IS NOT NULL"),
        ),
        # A resent message (its tab reconnected before hearing it was saved) is found, not saved twice.
        # NULLs are distinct in both databases: the AI's replies and old messages carry none.
        UniqueConstraint("participant_id", "client_message_id", name="uq_messages_author_client_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    room_id: int = Field(foreign_key="rooms.id", nullable=False, ondelete="CASCADE")
    participant_id: int = Field(foreign_key="participants.id", nullable=False, index=True, ondelete="CASCADE")
    client_message_id: str | None = Field(default=None, max_length=64)  # the sending tab's id for it
    display_as: str | None = Field(default=None, max_length=64)  # a name given by an incoming webhook's caller
    body: str = Field(nullable=False)
    created_at: datetime = Field(sa_column=_ts())
    status: str = Field(
        default="complete", max_length=16, nullable=False, sa_column_kwargs={"server_default": "complete"}
    )
    model: str | None = Field(default=None, max_length=200)
    prompt_tokens: int | None = Field(default=None)
    completion_tokens: int | None = Field(default=None)
    latency_ms: int | None = Field(default=None)
    edited_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    deleted_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    deleted_by: int | None = Field(default=None)  # the participant who deleted it


class InviteRow(SQLModel, table=True):
    """An invite link to a room; only the SHA-256 of its token is stored."""

    __tablename__ = "invites"

    id: int | None = Field(default=None, primary_key=True)
    room_id: int = Field(foreign_key="rooms.id", nullable=False, index=True, ondelete="CASCADE")
    token_hash: str = Field(max_length=64, unique=True, nullable=False)
    created_by: int = Field(foreign_key="participants.id", nullable=False, ondelete="CASCADE")
    created_at: datetime = Field(sa_column=_ts())
    expires_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    max_uses: int | None = Field(default=None)
    uses: int = Field(default=0, nullable=False)
    revoked_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))


class AiUsageRow(SQLModel, table=True):
    """One AI reply's token usage (kept when a regenerated reply replaces the message)."""

    __tablename__ = "ai_usage"

    id: int | None = Field(default=None, primary_key=True)
    room_id: int = Field(foreign_key="rooms.id", nullable=False, index=True, ondelete="CASCADE")
    model: str = Field(max_length=200, nullable=False)
    prompt_tokens: int = Field(nullable=False)
    completion_tokens: int = Field(nullable=False)
    cost_usd: float | None = Field(default=None)
    estimated: bool = Field(nullable=False)
    created_at: datetime = Field(sa_column=_ts())


class IncomingWebhookRow(SQLModel, table=True):
    """A room's incoming webhook; only the SHA-256 of the secret in its URL is stored."""

    __tablename__ = "incoming_webhooks"

    id: int | None = Field(default=None, primary_key=True)
    room_id: int = Field(foreign_key="rooms.id", nullable=False, index=True, ondelete="CASCADE")
    participant_id: int = Field(foreign_key="participants.id", nullable=False, ondelete="CASCADE")
    name: str = Field(max_length=64, nullable=False)
    token_hash: str = Field(max_length=64, unique=True, nullable=False)
    created_by: int = Field(foreign_key="participants.id", nullable=False, ondelete="CASCADE")
    created_at: datetime = Field(sa_column=_ts())
    last_used_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))


class OutgoingHookRow(SQLModel, table=True):
    """Where a bot is called; the secret signs each call (an HMAC needs it as it is)."""

    __tablename__ = "outgoing_hooks"

    bot_id: int = Field(foreign_key="users.id", primary_key=True, ondelete="CASCADE")
    url: str = Field(max_length=2000, nullable=False)
    secret: str = Field(max_length=128, nullable=False)
    created_at: datetime = Field(sa_column=_ts())


class HookDeliveryRow(SQLModel, table=True):
    """One call of a bot's outgoing webhook (the newest few per bot are kept)."""

    __tablename__ = "hook_deliveries"
    __table_args__ = (Index("ix_hook_deliveries_bot_id_id", "bot_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    bot_id: int = Field(foreign_key="users.id", nullable=False, ondelete="CASCADE")
    event_id: str = Field(max_length=64, unique=True, nullable=False)
    room_id: int = Field(foreign_key="rooms.id", nullable=False, ondelete="CASCADE")
    message_id: int = Field(nullable=False)
    status: str = Field(max_length=16, nullable=False)
    attempts: int = Field(default=0, nullable=False)
    http_status: int | None = Field(default=None)
    error: str = Field(default="", max_length=500, nullable=False)
    created_at: datetime = Field(sa_column=_ts())
    finished_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    reply_message_id: int | None = Field(default=None)


class BusKeptRow(SQLModel, table=True):
    """An event too big for a NOTIFY (store/bus_postgres.py), kept a few minutes for the processes
    told its id."""

    __tablename__ = "bus_kept"
    __table_args__ = (Index("ix_bus_kept_created_at", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    payload: str = Field(nullable=False)
    created_at: datetime = Field(sa_column=_ts())


class RunningReplyRow(SQLModel, table=True):
    """The AI reply being written in a room, by whichever process (one per room: the key)."""

    __tablename__ = "running_replies"

    room_id: int = Field(foreign_key="rooms.id", primary_key=True, ondelete="CASCADE")
    reply_id: str = Field(max_length=32, nullable=False)
    origin: str = Field(max_length=32, nullable=False)
    replaces_id: int | None = Field(default=None)
    text: str = Field(default="", nullable=False)
    started_at: datetime = Field(sa_column=_ts())
    beat_at: datetime = Field(sa_column=_ts())


class RateBucketRow(SQLModel, table=True):
    """A token bucket of a rate limit shared by several processes (store/rates_postgres.py)."""

    __tablename__ = "rate_buckets"
    __table_args__ = (Index("ix_rate_buckets_full_at", "full_at"),)

    key: str = Field(primary_key=True, max_length=300)
    tokens: float = Field(nullable=False)
    at: datetime = Field(sa_column=_ts())
    full_at: datetime = Field(sa_column=_ts())

"""incoming webhooks of rooms, bots' outgoing webhooks and their calls' log

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 12:00:00

An incoming webhook is stored as the SHA-256 of the secret in its URL; it posts as a participant of kind
webhook, and a message it posts may carry the name its caller gave (messages.display_as). An outgoing
webhook keeps its signing secret as it is (an HMAC needs it). participants.bot_calls says which messages
of a room call a bot: those mentioning it, or every one.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("participants") as batch:
        batch.add_column(sa.Column("bot_calls", sa.String(length=16), nullable=False, server_default="mention"))
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("display_as", sa.String(length=64), nullable=True))
    op.create_table(
        "incoming_webhooks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("room_id", sa.Integer(), sa.ForeignKey("rooms.id", ondelete="CASCADE"), nullable=False),
        sa.Column("participant_id", sa.Integer(), sa.ForeignKey("participants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False, unique=True),
        sa.Column("created_by", sa.Integer(), sa.ForeignKey("participants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_incoming_webhooks_room_id", "incoming_webhooks", ["room_id"])
    op.create_table(
        "outgoing_hooks",
        sa.Column("bot_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "hook_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("bot_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False, unique=True),
        sa.Column("room_id", sa.Integer(), sa.ForeignKey("rooms.id", ondelete="CASCADE"), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reply_message_id", sa.Integer(), nullable=True),
    )
    op.create_index("ix_hook_deliveries_bot_id_id", "hook_deliveries", ["bot_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_hook_deliveries_bot_id_id", table_name="hook_deliveries")
    op.drop_table("hook_deliveries")
    op.drop_table("outgoing_hooks")
    op.drop_index("ix_incoming_webhooks_room_id", table_name="incoming_webhooks")
    op.drop_table("incoming_webhooks")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("display_as")
    with op.batch_alter_table("participants") as batch:
        batch.drop_column("bot_calls")

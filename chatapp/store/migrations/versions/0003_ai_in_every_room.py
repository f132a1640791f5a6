"""the AI in every room: one AI participant per room, regenerated replies, usage per room

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 01:50:00

The AI participants of existing rooms are created at start-up (the AI's display name is a setting,
CHATAPP_AI_NAME, which a migration does not know): see chatapp.app.migrate_database.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ONE_AI_PER_ROOM = sa.text("kind = 'ai'")


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("edited_at", sa.DateTime(timezone=True), nullable=True))
    # Earlier versions created the AI participant lazily; keep the first if a race made two.
    op.execute(
        "DELETE FROM participants WHERE kind = 'ai' AND id NOT IN "
        "(SELECT min(id) FROM participants WHERE kind = 'ai' GROUP BY room_id) "
        "AND id NOT IN (SELECT participant_id FROM messages)"
    )
    op.create_index(
        "uq_participants_one_ai_per_room",
        "participants",
        ["room_id"],
        unique=True,
        sqlite_where=_ONE_AI_PER_ROOM,
        postgresql_where=_ONE_AI_PER_ROOM,
    )
    op.create_table(
        "ai_usage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("room_id", sa.Integer(), nullable=False),
        sa.Column("model", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=True),
        sa.Column("estimated", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["room_id"], ["rooms.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("ai_usage", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ai_usage_room_id"), ["room_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ai_usage", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ai_usage_room_id"))
    op.drop_table("ai_usage")
    op.drop_index("uq_participants_one_ai_per_room", table_name="participants")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("edited_at")

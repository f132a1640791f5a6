"""the AI participant: room AI settings, message status and usage

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 00:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("rooms", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("ai_mode", sqlmodel.sql.sqltypes.AutoString(length=16), server_default="mention", nullable=False)
        )
        batch_op.add_column(
            sa.Column(
                "ai_instruction", sqlmodel.sql.sqltypes.AutoString(length=2000), server_default="", nullable=False
            )
        )
        batch_op.add_column(sa.Column("ai_model", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
    with op.batch_alter_table("rooms", schema=None) as batch_op:  # the default was only for existing rows
        batch_op.alter_column("ai_instruction", server_default=None)
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), server_default="complete", nullable=False)
        )
        batch_op.add_column(sa.Column("model", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
        batch_op.add_column(sa.Column("prompt_tokens", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("completion_tokens", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("latency_ms", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        for column in ("latency_ms", "completion_tokens", "prompt_tokens", "model", "status"):
            batch_op.drop_column(column)
    with op.batch_alter_table("rooms", schema=None) as batch_op:
        for column in ("ai_model", "ai_instruction", "ai_mode"):
            batch_op.drop_column(column)

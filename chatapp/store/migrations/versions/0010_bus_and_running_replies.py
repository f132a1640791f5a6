"""events too big for a NOTIFY; the AI replies being written, one per room; shared rate limits

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 14:00:00

The PostgreSQL bus (store/bus_postgres.py) sends an event bigger than a NOTIFY payload (8000 bytes) by
its id in bus_kept; the rows are deleted after ten minutes. On SQLite the table stays empty.

running_replies holds the AI reply being written in each room, whichever process writes it: the room id
is its key, so there is one per room across processes (domain/ai.py). The writing process beats every
few seconds with the text so far; a row whose beat stopped belongs to a process that died, and any
process saves its text as interrupted and frees the room.

rate_buckets holds the token buckets of the rate limits when several processes share them on PostgreSQL
(store/rates_postgres.py): one row per key, gone once its bucket is full again (full_at).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bus_kept",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("payload", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_bus_kept_created_at", "bus_kept", ["created_at"])
    op.create_table(
        "running_replies",
        sa.Column("room_id", sa.Integer(), sa.ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("reply_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("origin", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("replaces_id", sa.Integer(), nullable=True),
        sa.Column("text", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("beat_at", sa.DateTime(timezone=True), nullable=False),
    )

    op.create_table(
        "rate_buckets",
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=300), primary_key=True),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("full_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_rate_buckets_full_at", "rate_buckets", ["full_at"])


def downgrade() -> None:
    op.drop_index("ix_rate_buckets_full_at", table_name="rate_buckets")
    op.drop_table("rate_buckets")
    op.drop_table("running_replies")
    op.drop_index("ix_bus_kept_created_at", table_name="bus_kept")
    op.drop_table("bus_kept")

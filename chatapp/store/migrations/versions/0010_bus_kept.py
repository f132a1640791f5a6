"""events too big for a NOTIFY, kept a few minutes by id

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 14:00:00

The PostgreSQL bus (store/bus_postgres.py) sends an event bigger than a NOTIFY payload (8000 bytes) by
its id in bus_kept; the rows are deleted after ten minutes. On SQLite the table stays empty.
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


def downgrade() -> None:
    op.drop_index("ix_bus_kept_created_at", table_name="bus_kept")
    op.drop_table("bus_kept")

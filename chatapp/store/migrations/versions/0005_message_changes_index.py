"""edited and deleted messages by room and time: what a reconnecting tab missed; participants by
the invite link they came in by

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 05:30:00

Partial indexes: only the few edited (regenerated) or deleted rows are in them, so a tab that comes
back after a dropped connection finds the changes of its room without reading the room's history.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXES = {"ix_messages_room_edited": "edited_at", "ix_messages_room_deleted": "deleted_at"}


def upgrade() -> None:
    for name, column in _INDEXES.items():
        where = sa.text(f"{column} IS NOT NULL")
        op.create_index(name, "messages", ["room_id", column], sqlite_where=where, postgresql_where=where)
    # Who else came in by a link (a removal keeps a link others use).
    op.create_index("ix_participants_invite_id", "participants", ["invite_id"])


def downgrade() -> None:
    op.drop_index("ix_participants_invite_id", table_name="participants")
    for name in _INDEXES:
        op.drop_index(name, table_name="messages")

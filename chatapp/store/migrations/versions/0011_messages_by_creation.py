"""an index of each room's messages by the time they were written

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 18:40:00

With several processes, a view that may have missed news (the bus was down, or a process died between
saving a message and telling the others) fetches the messages written since then whatever their id:
one saved late can have a smaller id than one it already shows (domain/chat.py catch_up).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_messages_room_created", "messages", ["room_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_messages_room_created", table_name="messages")

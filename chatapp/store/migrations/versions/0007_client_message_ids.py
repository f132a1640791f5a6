"""messages carry the id their sending tab gave them, unique per author

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 09:40:00

A tab keeps a message in its outbox until the server confirms it was saved, and sends it again after
a reconnect or a reload: the id makes the second send find the first message instead of saving a
copy. A unique constraint, not a partial index: NULLs are distinct in SQLite and PostgreSQL, so the
AI's replies and the messages from before this revision (none has an id) never clash.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("client_message_id", sa.String(length=64), nullable=True))
        batch.create_unique_constraint("uq_messages_author_client_id", ["participant_id", "client_message_id"])


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_constraint("uq_messages_author_client_id", type_="unique")
        batch.drop_column("client_message_id")

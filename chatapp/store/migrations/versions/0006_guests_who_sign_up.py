"""rooms decide whether a guest who creates an account becomes a member at once

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 22:40:00

Until now a guest who signed up became a member everywhere, which got past "guests may not ask the
AI" without the owner's approval. Now they stay guests until an owner or moderator changes their
role, unless the room says otherwise (off by default, for every existing room too).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("rooms") as batch:
        batch.add_column(
            sa.Column("signed_up_guests_become_members", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("rooms") as batch:
        batch.drop_column("signed_up_guests_become_members")

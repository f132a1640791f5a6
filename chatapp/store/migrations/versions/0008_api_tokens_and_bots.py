"""personal access tokens, and bot accounts (users with an owner)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 07:00:00

A token is stored as the SHA-256 of its value, like sessions and invites; its first characters are kept
to tell tokens apart in a list. A bot is a users row with bot_owner_id set and no usable password: it
acts only through its tokens, and goes when its owner's account goes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("bot_owner_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_users_bot_owner_id", "users", ["bot_owner_id"], ["id"], ondelete="CASCADE")
        batch.create_index("ix_users_bot_owner_id", ["bot_owner_id"])
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.String(length=64), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_api_tokens_user_id", table_name="api_tokens")
    op.drop_table("api_tokens")
    with op.batch_alter_table("users") as batch:
        batch.drop_index("ix_users_bot_owner_id")
        batch.drop_constraint("fk_users_bot_owner_id", type_="foreignkey")
        batch.drop_column("bot_owner_id")

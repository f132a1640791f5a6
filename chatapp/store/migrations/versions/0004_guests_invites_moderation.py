"""guests, invite links, roles and moderation

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "guests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("display_name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "guest_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("guest_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        _ts("created_at"),
        _ts("expires_at"),
        sa.ForeignKeyConstraint(["guest_id"], ["guests.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("guest_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_guest_sessions_guest_id"), ["guest_id"], unique=False)
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("guest_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), server_default="active", nullable=False)
        )
        batch_op.add_column(sa.Column("removed_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("invite_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_participants_guest_id"), ["guest_id"], unique=False)
        batch_op.create_unique_constraint("uq_participants_room_guest", ["room_id", "guest_id"])
        batch_op.create_foreign_key("fk_participants_guest_id", "guests", ["guest_id"], ["id"])
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(_ts("deleted_at", nullable=True))
        batch_op.add_column(sa.Column("deleted_by", sa.Integer(), nullable=True))
    with op.batch_alter_table("rooms", schema=None) as batch_op:
        batch_op.add_column(sa.Column("members_can_invite", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("guests_can_use_ai", sa.Boolean(), server_default=sa.true(), nullable=False))
    op.create_table(
        "invites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("room_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=False),
        _ts("created_at"),
        _ts("expires_at", nullable=True),
        sa.Column("max_uses", sa.Integer(), nullable=True),
        sa.Column("uses", sa.Integer(), nullable=False),
        _ts("revoked_at", nullable=True),
        sa.ForeignKeyConstraint(["room_id"], ["rooms.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["created_by"], ["participants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("invites", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_invites_room_id"), ["room_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("invites", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invites_room_id"))
    op.drop_table("invites")
    with op.batch_alter_table("rooms", schema=None) as batch_op:
        batch_op.drop_column("guests_can_use_ai")
        batch_op.drop_column("members_can_invite")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("deleted_by")
        batch_op.drop_column("deleted_at")
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.drop_constraint("fk_participants_guest_id", type_="foreignkey")
        batch_op.drop_constraint("uq_participants_room_guest", type_="unique")
        batch_op.drop_index(batch_op.f("ix_participants_guest_id"))
        batch_op.drop_column("invite_id")
        batch_op.drop_column("removed_by")
        batch_op.drop_column("state")
        batch_op.drop_column("guest_id")
    with op.batch_alter_table("guest_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_guest_sessions_guest_id"))
    op.drop_table("guest_sessions")
    op.drop_table("guests")

"""Alembic environment: run with a connection handed over by chatapp.store.migrate."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import chatapp.store.tables  # noqa: F401  (registers the tables on SQLModel.metadata)

target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    connection = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `python -m chatapp migrate`")
run_migrations_online()

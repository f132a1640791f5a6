"""Migrations: safe to run from two processes at once, idempotent, and in step with the SQLModel tables."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, event, inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

import chatapp.store.tables  # noqa: F401  (registers the tables on SQLModel.metadata)
from chatapp.app import Runtime, build_runtime, migrate_database
from chatapp.store.migrate import ADVISORY_LOCK_KEY, current_revision, head_revision, upgrade
from tests.conftest import make_settings
from tests.timing import SERVER_START_S

ROOT = Path(__file__).resolve().parent.parent
TABLES = {"users", "sessions", "rooms", "participants", "messages"}


def cli_env(tmp_path: Path, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATAPP_") and k != "PYTEST_CURRENT_TEST"}
    env.update(
        {"CHATAPP_DATA_DIR": str(tmp_path / "data"), "CHATAPP_DATABASE_URL": database_url, "PYTHONPATH": str(ROOT)}
    )
    return env


def test_head_is_a_real_revision() -> None:
    assert head_revision()


@pytest.mark.postgres
def test_two_processes_migrating_at_once_both_succeed(tmp_path: Path, postgres_database: str) -> None:
    """Hold the migration lock, start two `migrate` processes, wait until both queue on it, then let go:
    they run at the same moment and must both succeed, with the schema at head exactly once."""
    engine = create_engine(postgres_database)
    env = cli_env(tmp_path, postgres_database)
    processes: list[subprocess.Popen] = []
    try:
        with engine.connect() as holder:
            holder.execute(text("SELECT pg_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
            holder.commit()
            processes = [
                subprocess.Popen(
                    [sys.executable, "-m", "chatapp", "migrate"],
                    env=env,
                    cwd=ROOT,
                    text=True,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                )
                for _ in range(2)
            ]
            waiting = _wait_for_lock_waiters(engine, 2, processes)
            assert waiting == 2, "both processes must wait for the migration lock"
            holder.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY})
            holder.commit()
        results = [process.communicate(timeout=SERVER_START_S) for process in processes]
        for process, (out, err) in zip(processes, results, strict=True):
            assert process.returncode == 0, err
            assert f"Database is at revision {head_revision()}." in out
            assert "Traceback" not in err

        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [head_revision()]
            assert set(inspect(conn).get_table_names()) >= TABLES
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
        engine.dispose()


def _wait_for_lock_waiters(engine: Engine, wanted: int, processes: list[subprocess.Popen]) -> int:
    """How many sessions wait for the migration advisory lock (polls up to SERVER_START_S for `wanted`)."""
    deadline = time.monotonic() + SERVER_START_S
    count = 0
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            count = conn.execute(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                    "AND ((classid::bigint << 32) | objid::bigint) = :key"
                ),
                {"key": ADVISORY_LOCK_KEY},
            ).scalar_one()
            conn.rollback()
            if count >= wanted or any(p.poll() is not None for p in processes):
                return count
            time.sleep(0.05)
    return count


def test_migrating_sqlite_twice_is_a_no_op(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'chatapp.db'}")
    runtime = build_runtime(settings)
    try:
        migrate_database(runtime)
        assert current_revision(runtime.engine) == head_revision()
        with runtime.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO users (username, display_name, password_hash, created_at, updated_at) "
                    "VALUES ('keep', 'Keep', 'x', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
                )
            )
        schema_before = _sqlite_schema(runtime)

        statements: list[str] = []

        @event.listens_for(runtime.engine, "before_cursor_execute")
        def _record(conn, cursor, statement, parameters, context, executemany) -> None:
            statements.append(statement)

        migrate_database(runtime)
        event.remove(runtime.engine, "before_cursor_execute", _record)

        changes = [
            s
            for s in statements
            if s.split(None, 1)[0].upper() in {"CREATE", "ALTER", "DROP", "INSERT", "UPDATE", "DELETE"}
        ]
        assert statements, "the second migration must at least look at alembic_version"
        assert changes == []
        assert _sqlite_schema(runtime) == schema_before
        assert current_revision(runtime.engine) == head_revision()
        with runtime.engine.connect() as conn:
            assert conn.execute(text("SELECT username FROM users")).scalars().all() == ["keep"]
    finally:
        runtime.engine.dispose()


def _sqlite_schema(runtime: Runtime) -> list[tuple[str, str]]:
    with runtime.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text("SELECT name, sql FROM sqlite_master ORDER BY name"))]


def test_upgrade_from_empty_to_head_step_by_step_matches_one_go(tmp_path: Path) -> None:
    """Each revision applies on top of the previous one (not just `head` on an empty database)."""
    from alembic.script import ScriptDirectory

    from chatapp.store.migrate import alembic_config

    script = ScriptDirectory.from_config(alembic_config())
    revisions = [rev.revision for rev in reversed(list(script.walk_revisions()))]
    engine = create_engine(f"sqlite:///{tmp_path / 'steps.db'}")
    try:
        for revision in revisions:
            upgrade(engine, revision)
            assert current_revision(engine) == revision
        assert revisions[-1] == head_revision()
    finally:
        engine.dispose()


def test_models_match_the_migrations(runtime: Runtime) -> None:
    """Autogenerate finds nothing to do: every table, column, index and constraint is in a migration."""
    with runtime.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        differences = compare_metadata(context, SQLModel.metadata)
        tables = set(inspect(conn).get_table_names())
    assert tables >= TABLES
    assert differences == []


def test_the_model_comparison_can_see_a_difference(runtime: Runtime) -> None:
    """Guard: a table the migrations lack, and a column of the wrong type, are both reported."""
    metadata = MetaData()
    for table in SQLModel.metadata.sorted_tables:
        table.to_metadata(metadata)
    Table("not_migrated", metadata, Column("id", Integer, primary_key=True))
    metadata.tables["messages"].c.body.type = Integer()
    with runtime.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    kinds = {diff[0] if isinstance(diff, tuple) else diff[0][0] for diff in differences}
    assert "add_table" in kinds
    assert "modify_type" in kinds


def test_start_up_gives_rooms_from_before_the_ai_their_ai_participant_under_the_configured_name(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'chatapp.db'}")
    runtime = build_runtime(settings)
    try:
        upgrade(runtime.engine, "0002")  # a database from before every room had its AI
        with runtime.engine.begin() as conn:
            for name in ("old", "older"):
                conn.execute(
                    text(
                        "INSERT INTO rooms (name, topic, visibility, created_at, ai_instruction) "
                        "VALUES (:name, '', 'public', '2026-01-01 00:00:00', '')"
                    ),
                    {"name": name},
                )
        migrate_database(runtime)
        renamed = build_runtime(settings.model_copy(update={"ai_name": "Robo"}))
        migrate_database(renamed)  # CHATAPP_AI_NAME changed: the AI participants follow
        renamed.engine.dispose()
        with runtime.engine.connect() as conn:
            rows = conn.execute(text("SELECT room_id, display_name FROM participants WHERE kind = 'ai'")).all()
        assert sorted(rows) == [(1, "Robo"), (2, "Robo")]
    finally:
        runtime.engine.dispose()

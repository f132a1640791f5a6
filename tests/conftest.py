"""Shared fixtures: the database backends (SQLite and PostgreSQL) and a built runtime."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from chatapp.app import Runtime, build_runtime, migrate_database
from chatapp.config import Settings

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

pytest_plugins = ["nicegui.testing.user_plugin"]

POSTGRES_URL = os.environ.get("CHATAPP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REQUIRE_POSTGRES = os.environ.get("CHATAPP_REQUIRE_POSTGRES") == "1"
REDIS_URL = os.environ.get("CHATAPP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE_REDIS = os.environ.get("CHATAPP_REQUIRE_REDIS") == "1"
ARTIFACTS = Path(os.environ.get("CHATAPP_TEST_ARTIFACTS", Path(__file__).parent.parent / "test-artifacts"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the slow real-browser tests last, so the fast ones report first."""
    items.sort(key=lambda item: "tests/browser/" in item.nodeid)


def _postgres_admin_url() -> str:
    return POSTGRES_URL


def _postgres_available() -> str | None:
    """None if PostgreSQL answers, else why not."""
    try:
        engine = create_engine(_postgres_admin_url(), connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # the reason is shown in the skip message
        return f"PostgreSQL not reachable at {POSTGRES_URL}: {exc.__class__.__name__}"
    return None


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The admin URL of a reachable PostgreSQL; skips (or fails in CI) when there is none."""
    reason = _postgres_available()
    if reason:
        if REQUIRE_POSTGRES:
            pytest.fail(f"{reason} (CHATAPP_REQUIRE_POSTGRES=1)")
        pytest.skip(reason)
    return _postgres_admin_url()


@pytest.fixture(scope="session")
def redis_server() -> str:
    """The URL of a reachable Redis; skips (or fails in CI) when there is none."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except Exception as exc:  # the reason is shown in the skip message
        reason = f"Redis not reachable at {REDIS_URL}: {exc.__class__.__name__}"
        if REQUIRE_REDIS:
            pytest.fail(f"{reason} (CHATAPP_REQUIRE_REDIS=1)")
        pytest.skip(reason)
    return REDIS_URL


@contextmanager
def fresh_postgres_database(server_url: str, *, fast_commits: bool = False) -> Iterator[str]:
    """A new, empty PostgreSQL database on the server (its URL), dropped afterwards. `fast_commits`:
    commits need not wait for the disk (for suites making thousands; durability is not under test)."""
    name = f"chatapp_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
        if fast_commits:
            conn.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def postgres_database(postgres_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    with fresh_postgres_database(postgres_server) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'chatapp.db'}"
    return request.getfixturevalue("postgres_database")


def make_settings(tmp_path: Path, database_url: str, **overrides: object) -> Settings:
    """Settings for a test: its own data dir and database, fast but real argon2 parameters."""
    values: dict[str, object] = {
        "data_dir": tmp_path / "data",
        "database_url": database_url,
        "secret_key": "test-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
def settings(request: pytest.FixtureRequest, tmp_path: Path, database_url: str) -> Settings:
    """The test's settings; `@pytest.mark.settings(name=value, ...)` overrides some (e.g. a limit)."""
    marker = request.node.get_closest_marker("settings")
    return make_settings(tmp_path, database_url, **(marker.kwargs if marker else {}))


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    """Engine, migrations and domain services on the chosen backend."""
    built = build_runtime(settings)
    migrate_database(built)
    try:
        yield built
    finally:
        built.engine.dispose()

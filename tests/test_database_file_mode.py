"""The SQLite database holds password hashes and every message: only its owner may read it (mode 0600)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from chatapp.app import build_runtime, migrate_database
from tests.conftest import make_settings
from tests.test_cli_and_config import ROOT, clean_env
from tests.timing import SERVER_START_S

SIDE_FILES = ("chatapp.db-wal", "chatapp.db-shm")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask():
    """The usual umask (022), which is what made the file 0644 (restored afterwards)."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def build_and_write(data_dir: Path) -> None:
    """Build the runtime, migrate, and leave a connection open so the -wal and -shm files exist."""
    runtime = build_runtime(make_settings(data_dir.parent, f"sqlite:///{data_dir / 'chatapp.db'}", data_dir=data_dir))
    try:
        migrate_database(runtime)
        with runtime.engine.connect() as conn:
            conn.execute(text("SELECT count(*) FROM users"))
            for name in SIDE_FILES:
                assert (data_dir / name).exists(), f"{name} missing: the check below would prove nothing"
                assert mode(data_dir / name) == 0o600, f"{name} is {oct(mode(data_dir / name))}"
    finally:
        runtime.engine.dispose()


def test_a_new_database_and_its_wal_files_are_private(tmp_path: Path, permissive_umask) -> None:
    data_dir = tmp_path / "data"
    build_and_write(data_dir)
    assert mode(data_dir) == 0o700
    assert mode(data_dir / "chatapp.db") == 0o600


def test_an_existing_world_readable_database_is_made_private(tmp_path: Path, permissive_umask) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    db = data_dir / "chatapp.db"
    with contextlib.closing(sqlite3.connect(db)) as made_before:  # as earlier versions left it: 0644
        made_before.execute("PRAGMA journal_mode=WAL")
    assert mode(db) == 0o644
    build_and_write(data_dir)
    assert mode(db) == 0o600


def test_migrate_on_the_command_line_creates_a_private_database(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    result = subprocess.run(
        [sys.executable, "-m", "chatapp", "migrate"],
        env=clean_env(data_dir),
        cwd=ROOT,
        umask=0o022,
        capture_output=True,
        text=True,
        timeout=SERVER_START_S,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert mode(data_dir / "chatapp.db") == 0o600

"""A real `python -m chatapp` for the API's tests, beside the services of its database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from chatapp.app import Runtime, build_runtime, migrate_database
from chatapp.config import Settings
from tests.browser.conftest import RunningApp, start_app, stop_app


@contextmanager
def running_server(
    data_dir: Path, env: dict[str, str] | None = None, database_url: str | None = None
) -> Iterator[tuple[RunningApp, Runtime]]:
    """The server on `data_dir` (and `database_url`, else SQLite there), and a runtime on the same database
    to set up people and tokens as the app would (what it publishes stays in this process: live news is
    made through the server)."""
    app = start_app(data_dir, {**(env or {}), **({"CHATAPP_DATABASE_URL": database_url} if database_url else {})})
    runtime = build_runtime(Settings(data_dir=data_dir, database_url=database_url))
    migrate_database(runtime)
    try:
        yield app, runtime
    finally:
        runtime.engine.dispose()
        stop_app(app)

"""One server process per SQLite database: a second `python -m chatapp` on the same file is refused.

Live news crosses processes only through PostgreSQL or Redis (store/bus.py); on SQLite it stays in the
process, so two servers on one file would each show half of what happens. The first server holds an
exclusive lock on a file beside the database for its whole life (released by the OS however it ends);
the second finds it taken and stops with a message saying what to do. CLI commands (migrate,
create-user, create-token) run beside a server as before.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from chatapp.config import Settings
from chatapp.store.db import is_sqlite

LOCK_NAME = "server.lock"


class AnotherProcessServes(Exception):
    """A server already runs on this SQLite database."""


@dataclass
class ServerLock:
    """The lock a server holds (nothing on PostgreSQL, where several processes are the way to grow)."""

    fd: int | None = None

    def release(self) -> None:
        """Let go of the lock (the process is ending)."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def serve_alone(settings: Settings) -> ServerLock:
    """Take the SQLite database's server lock; AnotherProcessServes if another process holds it."""
    url = settings.resolved_database_url
    name = make_url(url).database if is_sqlite(url) else None
    if not name or name == ":memory:":
        return ServerLock()
    database = Path(name).resolve()
    database.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = database.parent / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise AnotherProcessServes(
            f"Another chatapp server is already running on the SQLite database {database}. "
            "Several processes need PostgreSQL (set CHATAPP_DATABASE_URL=postgresql+psycopg://...), "
            "which carries live news between them; on SQLite, run one process."
        ) from None
    return ServerLock(fd)

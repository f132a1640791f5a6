"""Secrets never reach the log: uvicorn's access and connection lines name paths and query strings.

An invite link's token is a secret (only its hash is stored). A page's client id and tab id, in the
query string of every NiceGUI socket request, used to be enough to take the page over; the socket
is now bound to the page's session too (pages/socket_guard.py), but they stay capabilities and out
of the log.
"""

from __future__ import annotations

import logging
import re

_INVITE_TOKEN = re.compile(r"(/join/)[A-Za-z0-9_-]{20,}")
SECRET_QUERY_PARAMETERS = ("client_id", "tab_id", "old_tab_id", "document_id", "token", "access_token")
_SECRET_QUERY = re.compile(rf"([?&](?:{'|'.join(SECRET_QUERY_PARAMETERS)})=)[^&\s\"]*")
REDACTED_LOGGERS = ("uvicorn.access", "uvicorn.error")


def redact(text: str) -> str:
    """The text with invite tokens and secret query parameters replaced by placeholders."""
    return _SECRET_QUERY.sub(r"\1<redacted>", _INVITE_TOKEN.sub(r"\1<token>", text))


def redact_secrets(record: logging.LogRecord) -> bool:
    """A logging filter: rewrites the record's string arguments (it never drops a record)."""
    if record.args and isinstance(record.args, tuple):
        record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
    elif isinstance(record.msg, str) and not record.args:
        record.msg = redact(record.msg)
    return True


def install_log_redaction() -> None:
    """Filter uvicorn's loggers (its access lines, and its WebSocket lines on uvicorn.error)."""
    for name in REDACTED_LOGGERS:
        logger = logging.getLogger(name)
        if redact_secrets not in logger.filters:
            logger.addFilter(redact_secrets)

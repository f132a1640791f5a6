"""Secrets never reach the log: uvicorn's access and connection lines name paths and query strings.

An invite link's token is a secret (only its hash is stored), and so is an incoming webhook's URL.
A page's client id and tab id, in the query string of every NiceGUI socket request, and a socket's
engine.io sid used to be enough to take a page or its socket over; sockets are now bound to the page's
session too (pages/socket_guard.py), but these stay capabilities and out of the log.
"""

from __future__ import annotations

import logging
import re

_INVITE_TOKEN = re.compile(r"(/join/|/hooks/)[A-Za-z0-9_-]{20,}")  # invite links, incoming webhooks' URLs
# A socket's engine.io sid names it in every later request; a signed flash (f) is readable by anyone
# (signed, not encrypted) and can hold a /join/ link to come back to.
SECRET_QUERY_PARAMETERS = ("client_id", "tab_id", "old_tab_id", "document_id", "sid", "f", "token", "access_token")
_SECRET_QUERY = re.compile(rf"([?&](?:{'|'.join(SECRET_QUERY_PARAMETERS)})=)[^&\s\"]*")
REDACTED_LOGGERS = ("uvicorn.access", "uvicorn.error", "engineio.server", "socketio.server")


_ENGINE_IO_SESSION = re.compile(r"(Invalid session )\S+")  # engine.io's complaint names the sid it got


def redact(text: str) -> str:
    """The text with invite tokens, secret query parameters and engine.io sids replaced by placeholders."""
    text = _ENGINE_IO_SESSION.sub(r"\1<redacted>", _INVITE_TOKEN.sub(r"\1<token>", text))
    return _SECRET_QUERY.sub(r"\1<redacted>", text)


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

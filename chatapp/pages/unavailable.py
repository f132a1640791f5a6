"""While the database does not answer, a request that fails gets "Database unavailable" (503), not a 500.

A page whose build fails (NiceGUI turns the exception, or a build that outlives its response timeout,
into its own 500 page) or an endpoint whose exception escapes (Starlette's plain 500) is answered,
when the health check finds the database unreachable, with a small 503 page: Retry-After, and a
`<meta http-equiv="refresh">` (the CSP allows no script of ours to rely on) that reloads it until the
real page comes back. What failed is not classified: pages may not import the database driver, and a
failure is a database outage exactly when the database does not answer. A 500 while the database
answers stays the app's own error page. Requests under /_nicegui (assets, socket.io) are left alone.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from chatapp.pages.http_headers import AsgiApp, Message, Receive, Send, with_security_headers
from chatapp.pages.session import safe_next

log = logging.getLogger(__name__)

RETRY_AFTER_S = 5
HEALTH_REUSE_S = 1.0  # failures at once share one health check
INTERNAL_PREFIX = "/_nicegui"

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{seconds}{target}">
<title>Database unavailable · chatapp</title>
<style>
body {{ margin: 0; font-family: system-ui, sans-serif; line-height: 1.5; color: #1f2937; background: #fff; }}
header {{ padding: .6rem 1rem; background: #4f46e5; color: #fff; font-size: 1.125rem; font-weight: 700; }}
main {{ max-width: 40rem; margin: 2rem auto; padding: 0 1rem; }}
h1 {{ font-size: 1.5rem; margin: 0 0 .5rem; }}
a {{ color: #4338ca; }}
@media (prefers-color-scheme: dark) {{
  body {{ color: #e5e7eb; background: #121212; }}
  a {{ color: #a5b4fc; }}
}}
</style>
</head>
<body>
<header>chatapp</header>
<main>
<h1>Database unavailable</h1>
<p>chatapp cannot reach its database at the moment. This page retries by itself every {seconds} seconds
and shows {what} as soon as the database is back.</p>
<p><a href="{href}">Try again now</a></p>
</main>
</body>
</html>
"""


class HealthProbe:
    """The database health check, run at most once per HEALTH_REUSE_S whatever the number of askers."""

    def __init__(self, database_ok: Callable[[], Awaitable[bool]]) -> None:
        self._database_ok = database_ok
        self._check: asyncio.Future[bool] | None = None
        self._started = 0.0

    async def database_ok(self) -> bool:
        """True when the database answers (a check started less than HEALTH_REUSE_S ago is shared)."""
        now = time.monotonic()
        if self._check is None or (self._check.done() and now - self._started >= HEALTH_REUSE_S):
            self._started = now
            self._check = asyncio.ensure_future(self._database_ok())
        return await asyncio.shield(self._check)


class DatabaseUnavailablePage:
    """ASGI middleware: a 500, or an escaping exception, while the database does not answer becomes the
    503 "Database unavailable" page."""

    def __init__(self, app: AsgiApp, *, database_ok: Callable[[], Awaitable[bool]]) -> None:
        self.app = app
        self._probe = HealthProbe(database_ok)

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        """Pass the request on; replace its failure when the database is why."""
        if scope["type"] != "http" or scope["path"].startswith(INTERNAL_PREFIX):
            await self.app(scope, receive, send)
            return
        state = {"started": False, "replaced": False}

        async def send_unless_replaced(message: Message) -> None:
            if state["replaced"]:
                return  # the rest of the failed response
            if message["type"] == "http.response.start":
                if message["status"] == 500 and not await self._probe.database_ok():
                    state["replaced"] = True
                    await self._answer_unavailable(scope, send, "500")
                    return
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, receive, send_unless_replaced)
        except Exception as exc:
            if state["started"] or state["replaced"] or await self._probe.database_ok():
                raise
            await self._answer_unavailable(scope, send, type(exc).__name__)

    async def _answer_unavailable(self, scope: MutableMapping[str, Any], send: Send, failure: str) -> None:
        log.warning(
            "a %s request failed (%s) while the database does not answer: answered 503", scope["method"], failure
        )
        await send_unavailable_page(scope, send)


def retry_target(scope: MutableMapping[str, Any]) -> str:
    """Where the page retries: the same address for a GET; after a form's POST, the page that posted it
    (a reload would ask to post again, or GET an endpoint that only takes POSTs)."""
    if scope["method"] in ("GET", "HEAD"):
        path, query = scope["path"], scope.get("query_string", b"").decode("latin-1")
    else:
        referer = urlsplit(dict(scope.get("headers", ())).get(b"referer", b"").decode("latin-1"))
        path, query = referer.path, referer.query
    return safe_next(path + (f"?{query}" if query else ""))  # this site only (a path like //host is not)


def unavailable_page(scope: MutableMapping[str, Any]) -> bytes:
    """The page's HTML: it reloads itself (a GET) or the page whose form was posted."""
    reload_same = scope["method"] in ("GET", "HEAD")
    href = html.escape(retry_target(scope), quote=True)
    return PAGE.format(
        seconds=RETRY_AFTER_S,
        target="" if reload_same else f"; url={href}",
        what="the page you asked for" if reload_same else "the form again",
        href=href,
    ).encode()


API_PATH_PREFIX = "/api/"
_UNAVAILABLE_JSON = json.dumps(
    {"error": {"code": "unavailable", "message": "The database is not answering; try again shortly."}}
).encode()


async def send_unavailable_page(scope: MutableMapping[str, Any], send: Send) -> None:
    """Send the whole 503 response, with the app's security headers: the page, or for the API (whose
    clients read JSON) its error shape."""
    if scope["path"].startswith(API_PATH_PREFIX):
        body, content_type = _UNAVAILABLE_JSON, b"application/json"
    else:
        body, content_type = unavailable_page(scope), b"text/html; charset=utf-8"
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(RETRY_AFTER_S).encode()),
        (b"cache-control", b"no-store"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": with_security_headers(headers)})
    await send({"type": "http.response.body", "body": body})

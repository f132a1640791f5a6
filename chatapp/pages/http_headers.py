"""Security headers on every HTTP response: pages, endpoints, redirects, static files, 404s.

A pure ASGI middleware (not Starlette's BaseHTTPMiddleware): it only adds headers to the
`http.response.start` message and passes everything else through untouched, so streamed bodies
and websockets (NiceGUI's socket.io at /_nicegui_ws/) are unaffected.

Why this policy (docs/ARCHITECTURE.md, "Security headers"): NiceGUI 3.18's page template has inline
`<script>` blocks (the import map, `addStyle`, the app's start-up), Vue compiles component templates
in the browser with `Function(...)` and nicegui.js evaluates `:prop` bindings, event handlers and
`run_javascript` with `eval`/`new Function`, so scripts need 'unsafe-inline' and 'unsafe-eval'
(inline event handlers stay allowed: the sign-in forms close the socket in an `onsubmit` attribute).
Quasar and Tailwind inject `<style>` and style attributes ('unsafe-inline' styles); the favicon is a `data:`
SVG. Everything else comes from this origin (socket.io's websocket included: 'self' covers ws: to
the same host in CSP 3). Nobody may frame the app (frame-ancestors, and X-Frame-Options for older
browsers): clickjacking. Referrer-Policy same-origin: invite links carry their secret token in the
path, and no other site ever sees a chatapp URL (no-referrer would also make same-origin form POSTs
send `Origin: null`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

log = logging.getLogger(__name__)

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"x-content-type-options", b"nosniff"),
)


def with_security_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The response's headers plus each security header it does not set itself."""
    present = {name.lower() for name, _ in headers}
    return [*headers, *((name, value) for name, value in SECURITY_HEADERS if name not in present)]


class SecurityHeaders:
    """ASGI middleware: adds SECURITY_HEADERS to every HTTP response; websockets pass through."""

    def __init__(self, app: AsgiApp) -> None:
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        """Wrap `send` of HTTP requests so the response start carries the headers."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": with_security_headers(list(message.get("headers", ())))}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class UntrustedProxyWarning:
    """ASGI middleware: says once, in the log, that a proxy on this machine forwards requests whose
    X-Forwarded-For is not believed (FORWARDED_ALLOW_IPS is unset): every visitor then shares the
    proxy's address, and so its per-address limits (sign-in, sign-up, invite links)."""

    def __init__(self, app: AsgiApp, *, trusted: bool) -> None:
        self.app = app
        self._quiet = trusted

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        """Look at the request once, then pass it on unchanged."""
        if not self._quiet and scope["type"] in ("http", "websocket") and _forwarded_by_local_proxy(scope):
            self._quiet = True
            log.warning(
                "a proxy on this machine sends X-Forwarded-For, which is not believed: every visitor shares "
                "its address and its rate limits. Set FORWARDED_ALLOW_IPS to the proxy's address (README)."
            )
        await self.app(scope, receive, send)


def _forwarded_by_local_proxy(scope: MutableMapping[str, Any]) -> bool:
    client = scope.get("client") or ("", 0)
    local = client[0] in ("127.0.0.1", "::1") or client[0].startswith("127.")
    return local and any(name == b"x-forwarded-for" for name, _ in scope.get("headers", ()))

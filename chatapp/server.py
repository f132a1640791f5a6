"""How uvicorn serves chatapp: which proxies are believed, and how long a connection may dawdle.

uvicorn (0.54) has a keep-alive timeout, armed when a response ends and cancelled by the first byte
of the next request, but no limit on the time a request's headers take: a fresh connection, or a
kept-alive one that has sent one byte, may then trickle a header byte a second forever, and a few
thousand such connections hold the process's file descriptors (slowloris). `HeadersTimeoutProtocol`
adds that limit to uvicorn's httptools protocol (the one uvicorn picks; httptools comes with
uvicorn[standard], which NiceGUI requires): a timer starts when the connection opens and when a
response ends, stops once a request's headers are complete (a websocket upgrade's too: the
connection then belongs to the websocket protocol), and closes the connection if it fires.

Its websocket upgrades go to `RoomSocketAwareWSProtocol`, uvicorn's wsproto protocol (the one NiceGUI's
ui.run names, and does not let one change) minus permessage-deflate on the room socket only.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any
from urllib.parse import unquote

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.wsproto_impl import WSProtocol
from wsproto import events

from chatapp.api.socket import SOCKET_PATH
from chatapp.config import Settings

# Paths whose websockets are never compressed. The room socket's frames are small JSON pushes, sent to
# every socket of a room, and uvicorn's wsproto deflated each one once per socket in pure Python: one
# message to 1,000 room sockets took p50 74-98 ms with it, 33-34 ms without (bench.socket_fanout,
# 2026-12-04, calibration 80 ms; a bare Starlette broadcast 42 ms with it, 27 ms without). Phoenix
# itself defaults to compress: false. NiceGUI's own socket.io websocket keeps permessage-deflate (its
# updates go to one tab at a time, and are larger).
UNCOMPRESSED_WEBSOCKET_PATHS = frozenset({SOCKET_PATH})


class RoomSocketAwareWSProtocol(WSProtocol):
    """uvicorn's wsproto websocket protocol, accepting no permessage-deflate on UNCOMPRESSED_WEBSOCKET_PATHS.

    uvicorn decides compression for the whole server (Config.ws_per_message_deflate, read when the app
    accepts); this reads it from a copy of the config that says no, for those paths' connections alone.
    """

    def handle_connect(self, event: events.Request) -> None:
        """The client's opening handshake: before the app sees it, choose this connection's compression."""
        if unquote(event.target.partition("?")[0]) in UNCOMPRESSED_WEBSOCKET_PATHS:
            # this connection's own shallow copy (a few microseconds, once per connection)
            self.config = copy.copy(self.config)
            self.config.ws_per_message_deflate = False
        super().handle_connect(event)


class HeadersTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing connections whose request headers take too long."""

    headers_timeout: float = 10.0
    _headers_timer: asyncio.TimerHandle | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.ws_protocol_class is WSProtocol:  # ui.run's ws="wsproto": the same, room-socket aware
            self.ws_protocol_class = RoomSocketAwareWSProtocol

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """A new connection: its first request's headers must arrive within the timeout."""
        super().connection_made(transport)
        self._start_headers_timer()

    def on_headers_complete(self) -> None:
        """The parser has the whole head of a request: no more waiting for it."""
        self._stop_headers_timer()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        """A response ended: unless a pipelined request is already queued, time the next one's headers."""
        idle = not self.pipeline
        super().on_response_complete()
        if idle and not self.transport.is_closing():
            self._start_headers_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection is gone: so is its timer."""
        self._stop_headers_timer()
        super().connection_lost(exc)

    def _start_headers_timer(self) -> None:
        self._stop_headers_timer()
        self._headers_timer = self.loop.call_later(self.headers_timeout, self._headers_timed_out)

    def _stop_headers_timer(self) -> None:
        if self._headers_timer is not None:
            self._headers_timer.cancel()
            self._headers_timer = None

    def _headers_timed_out(self) -> None:
        self._headers_timer = None
        if not self.transport.is_closing():
            self.logger.debug("closing a connection whose request headers took over %s s", self.headers_timeout)
            self.transport.close()


def headers_timeout_protocol(seconds: float) -> type[HeadersTimeoutProtocol]:
    """The protocol class for uvicorn.Config(http=...), with this headers timeout."""
    return type("HeadersTimeoutProtocol", (HeadersTimeoutProtocol,), {"headers_timeout": seconds})


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ui.run, which passes them on to uvicorn.Config.

    X-Forwarded-For and -Proto are believed only from FORWARDED_ALLOW_IPS as the admin set it: uvicorn
    itself trusts 127.0.0.1 when that is unset, so any local hop passing the client's header along
    (a sidecar, an SSH tunnel, a misconfigured proxy) let every request claim a new address and escape
    the per-IP limits.
    """
    trusted = settings.forwarded_allow_ips.strip()
    return {
        "http": headers_timeout_protocol(settings.headers_timeout),
        "timeout_keep_alive": settings.keep_alive_timeout,
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": trusted,
    }

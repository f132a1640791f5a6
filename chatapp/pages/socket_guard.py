"""NiceGUI's socket.io endpoint, held to the session that rendered each page.

NiceGUI lets any socket take over a page's client with two values from its URL (client id and tab
id, which the access log used to print), and accepts event frames for any client id from any
socket; engine.io accepts any request that names a live socket's sid (polling, the upgrade to a
WebSocket). A copied pair received a private room's live messages and could click the owner's
buttons. Here:
- a handshake must carry the same session cookies as the request that rendered the page (a refused
  one reloads the page in the browser, under whatever session it has now);
- every later engine.io request of a socket must carry the cookies it connected with;
- a frame is handled only for the page its socket handshook for.

Frames that are not what NiceGUI's page script sends (undecodable packets, wrong shapes) used to
raise in NiceGUI's handlers: 2,000 of them from one socket wrote 2,010 tracebacks. Now the first
one closes the socket, with one log line. The browser's own log frames are kept short and few.
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs

from nicegui import Client, core
from socketio.exceptions import ConnectionRefusedError as SocketRefused
from starlette.requests import cookie_parser

from chatapp.pages.session import GUEST_COOKIE, SESSION_COOKIE

log = logging.getLogger(__name__)

BOUND_COOKIES = (SESSION_COOKIE, GUEST_COOKIE)
MAX_REMEMBERED_SOCKETS = 10_000
BROWSER_LOG_LINES_PER_SOCKET = 3  # NiceGUI's page script logs only a too-long message (a rare mistake)
BROWSER_LOG_MAX_CHARS = 200
# nicegui.js reloads the page on exactly this refusal of an implicit handshake (any other text leaves
# the tab on "Trying to reconnect" for good).
REFUSAL_THE_PAGE_SCRIPT_RELOADS_ON = "Implicit handshake failed"

Shape = dict[str, tuple[type, ...]]
_STR, _OPT_STR, _INT = (str,), (str, type(None)), (int,)
# What NiceGUI's page script sends (nicegui/static/nicegui.js), field by field; more fields are allowed.
FRAME_SHAPES: dict[str, Shape] = {
    "handshake": {"client_id": _STR, "tab_id": _STR, "document_id": _STR, "old_tab_id": _OPT_STR},
    "event": {"client_id": _STR, "id": _INT, "listener_id": _STR, "args": (list,)},
    "javascript_response": {"client_id": _STR, "request_id": _STR},
    "ack": {"client_id": _STR, "next_message_id": _INT},
    "log": {"client_id": _STR, "level": _STR, "message": _STR},
}
OPTIONAL_FIELDS = {"old_tab_id", "args"}
# Every socket.io event NiceGUI 3.18 handles: one this guard does not know would pass unchecked.
KNOWN_EVENTS = {"connect", "disconnect", *FRAME_SHAPES}


def _digest(value: str | None) -> bytes:
    return hashlib.sha256((value or "").encode()).digest()


def same_cookies(expected: Mapping[str, str], cookie_header: str) -> bool:
    """Whether a Cookie header carries the same session and guest cookies (both absent counts)."""
    found = cookie_parser(cookie_header)
    return all(hmac.compare_digest(_digest(expected.get(n)), _digest(found.get(n))) for n in BOUND_COOKIES)


def same_session(client: Client, environ: Mapping[str, Any]) -> bool:
    """Whether a socket's cookies are the session (and guest) cookies its page was rendered with."""
    page_cookies = client.request.cookies if client.request is not None else {}
    return same_cookies(page_cookies, environ.get("HTTP_COOKIE", ""))


def well_formed(event: str, args: tuple[Any, ...]) -> bool:
    """Whether a frame's arguments have the shape NiceGUI's page script gives that event."""
    if len(args) != 1 or not isinstance(args[0], dict):
        return False
    message = args[0]
    for name, types in FRAME_SHAPES[event].items():
        if name not in message and name in OPTIONAL_FIELDS:
            continue
        value = message.get(name)
        if not isinstance(value, types) or isinstance(value, bool):
            return False
    return event != "event" or all(arg is None or isinstance(arg, str) for arg in message.get("args", []))


def _scope_query(scope: Mapping[str, Any]) -> dict[str, str]:
    raw = scope.get("query_string", b"")
    return {key: values[0] for key, values in parse_qs(raw.decode("latin-1")).items()}


def _scope_cookie_header(scope: Mapping[str, Any]) -> str:
    return "; ".join(value.decode("latin-1") for name, value in scope.get("headers", ()) if name == b"cookie")


async def _refuse_request(scope: Mapping[str, Any], receive: Callable, send: Callable) -> None:
    """Answer an engine.io request that may not use the socket it names: 400, or a refused WebSocket."""
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.close", "code": 1008})
        return
    await send({"type": "http.response.start", "status": 400, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"This socket belongs to another session."})


class SocketGuard:
    """Wraps NiceGUI's socket.io handlers (installed once, after NiceGUI registered its own)."""

    def __init__(self) -> None:
        self._sio = core.sio
        self._struck: OrderedDict[str, None] = OrderedDict()  # engine.io sessions told off (one line each)
        self._browser_log_lines: OrderedDict[str, int] = OrderedDict()

    def install(self) -> None:
        """Put the checks in front of NiceGUI's connect, handshake and frame handlers and of every
        engine.io request. Refuses to start if NiceGUI handles an event this guard does not know."""
        handlers = self._sio.handlers["/"]
        if getattr(handlers["connect"], "chatapp_guard", False):
            return  # already installed (the app is registered again in each simulated test)
        if unknown := set(handlers) - KNOWN_EVENTS:
            raise RuntimeError(f"NiceGUI handles socket events chatapp's socket guard does not check: {unknown}")
        handlers["connect"] = self._guard_connect(handlers["connect"])
        handlers["log"] = self._browser_log
        for event in FRAME_SHAPES.keys() - {"log"}:
            handlers[event] = self._guard_frame(event, handlers[event])
        engine = self._sio.eio
        engine.handlers["message"] = self._guard_packets(engine.handlers["message"])
        engine.handle_request = self._guard_requests(engine.handle_request)

    def _guard_requests(self, handle: Callable) -> Callable:
        async def guarded(scope: Mapping[str, Any], receive: Callable, send: Callable) -> None:
            sid = _scope_query(scope).get("sid")
            connected = self._sio.environ.get(sid) if sid else None
            if connected is not None:
                first = cookie_parser(connected.get("HTTP_COOKIE", ""))
                if not same_cookies(first, _scope_cookie_header(scope)):
                    await _refuse_request(scope, receive, send)
                    return
            await handle(scope, receive, send)

        return guarded

    def _guard_connect(self, connect: Callable) -> Callable:
        async def guarded(sid: str, environ: dict[str, Any], auth: Any = None) -> Any:
            query = {key: values[0] for key, values in parse_qs(environ.get("QUERY_STRING", "")).items()}
            if query.get("implicit_handshake") == "true":
                client = Client.instances.get(query.get("client_id", ""))
                if client is not None and not same_session(client, environ):
                    raise SocketRefused(REFUSAL_THE_PAGE_SCRIPT_RELOADS_ON)
            return await connect(sid, environ, auth)

        guarded.chatapp_guard = True  # type: ignore[attr-defined]
        return guarded

    def _guard_frame(self, event: str, handle: Callable) -> Callable:
        async def guarded(sid: str, *args: Any) -> Any:
            if not well_formed(event, args):
                return await self._strike(sid, f"a malformed {event!r} frame")
            client_id = args[0]["client_id"]
            if event == "handshake":
                client = Client.instances.get(client_id)
                if client is not None and not same_session(client, self._sio.get_environ(sid) or {}):
                    return False  # the page script reloads the page, under whatever session the browser has now
            elif not self._opened(sid, client_id):
                return await self._strike(sid, f"a {event!r} frame for a page the socket did not open")
            try:
                result = handle(sid, *args)
                return await result if inspect.isawaitable(result) else result
            except Exception:  # NiceGUI trusted the frame's contents; any failure here is the frame's
                return await self._strike(sid, f"a {event!r} frame NiceGUI could not handle")

        return guarded

    async def _browser_log(self, sid: str, *args: Any) -> None:
        """The page script's own log line (a message too long to send): a few per socket, on one
        short line each, so that nobody can write the server's log through a socket."""
        if not well_formed("log", args) or not self._opened(sid, args[0]["client_id"]):
            await self._strike(sid, "a 'log' frame for a page the socket did not open")
            return
        seen = self._browser_log_lines.get(sid, 0)
        self._remember(self._browser_log_lines, sid, seen + 1)
        if seen < BROWSER_LOG_LINES_PER_SOCKET:
            log.warning("a browser reported: %r", args[0]["message"][:BROWSER_LOG_MAX_CHARS])

    def _opened(self, sid: str, client_id: str) -> bool:
        """Whether the socket opened this page (it is in the page's room). One lookup: socket.io's own
        rooms(sid) walks every room of the server, which at 2,000 tabs was a fifth of a busy
        process's time (bench.steps, py-spy)."""
        room = self._sio.manager.rooms.get("/", {}).get(client_id)
        return room is not None and sid in room

    def _guard_packets(self, handle: Callable) -> Callable:
        async def guarded(eio_sid: str, data: Any) -> None:
            try:
                await handle(eio_sid, data)
            except Exception:  # an undecodable socket.io packet (python-socketio raises ValueError)
                await self._close(eio_sid, "an undecodable packet")

        return guarded

    async def _strike(self, sid: str, what: str) -> None:
        eio_sid = self._sio.manager.eio_sid_from_sid(sid, "/")
        if eio_sid is not None:
            await self._close(eio_sid, what)

    async def _close(self, eio_sid: str, what: str) -> None:
        """Close the socket; say so once per socket (the frames it had already sent say nothing)."""
        if eio_sid not in self._struck:
            self._remember(self._struck, eio_sid, None)
            log.warning("closed a socket that sent %s", what)
        engine_socket = self._sio.eio.sockets.get(eio_sid)
        await self._sio.eio.disconnect(eio_sid)
        if engine_socket is not None:
            # engine.io only says goodbye and waits for the peer to hang up (a forger never does);
            # an empty entry in its send queue makes its writer close the WebSocket now.
            await engine_socket.queue.put(None)

    @staticmethod
    def _remember(table: OrderedDict, key: str, value: Any) -> None:
        table[key] = value
        table.move_to_end(key)
        while len(table) > MAX_REMEMBERED_SOCKETS:
            table.popitem(last=False)


def install_socket_guard() -> None:
    """Hold NiceGUI's socket to the sessions that rendered its pages, and drop malformed frames."""
    SocketGuard().install()

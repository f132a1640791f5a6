"""The room socket: a WebSocket at /api/socket/websocket speaking Phoenix Channels v2, so that existing
Phoenix clients (phoenix.js and its ports to Swift, Kotlin, Dart, Python...) join chatapp's rooms.

A connection is authenticated once, by a personal access token sent the way Phoenix clients send it:
`Authorization: Bearer`, phoenix.js's `authToken` (a `base64url.bearer.phx.` subprotocol) or the
`token` connect parameter of the query string. Its channels are `room:<id>` topics
(api/socket_channel.py) and the socket's own user's `user:<id>` notices (api/socket_user_channel.py).
Every frame is read within limits (size, rate, channels, an idle timeout); a malformed one gets an
error reply, never a traceback, and one client's trouble never reaches another: each socket has its
own bounded send queue, and a socket that cannot keep up is closed (its client rejoins and catches up).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.websockets import WebSocket, WebSocketDisconnect

from chatapp.api.auth import bearer_token
from chatapp.api.errors import status_and_body
from chatapp.api.socket_channel import RoomChannel, parse_room_topic
from chatapp.api.socket_frames import (
    ERROR,
    HEARTBEAT,
    JOIN,
    LEAVE,
    PHOENIX_TOPIC,
    BadFrame,
    Frame,
    encode,
    parse_frame,
    reply,
)
from chatapp.api.socket_hub import SocketRoomHubs
from chatapp.api.socket_user_channel import UserChannel, is_user_topic
from chatapp.domain.errors import DomainError
from chatapp.domain.limits import Rate, RateLimited, RateLimiter
from chatapp.domain.models import Actor
from chatapp.domain.services import Services

log = logging.getLogger(__name__)

SOCKET_PATH = "/api/socket/websocket"
AUTH_PROTOCOL_PREFIX = "base64url.bearer.phx."  # phoenix.js's authToken
CLOSE_NORMAL, CLOSE_POLICY, CLOSE_TOO_BIG, CLOSE_TRY_AGAIN = 1000, 1008, 1009, 1013
CLOSE_UNAUTHORIZED = 4001  # no token, or one unknown, revoked or expired


@dataclass(frozen=True)
class SocketLimits:
    """What one room socket may do."""

    max_frame_bytes: int = 65_536
    max_channels: int = 100
    idle_timeout_s: float = 60.0  # without any frame (phoenix.js sends a heartbeat every 30 s)
    max_backlog: int = 1_000  # frames queued for a client that does not read: then it is closed
    frames_burst: int = 100
    frames_per_second: float = 50.0


def socket_token(websocket: WebSocket) -> tuple[str | None, str | None]:
    """The token of a connection and the subprotocol to accept ("phoenix" when the client asked for it)."""
    # The ASGI server hands the requested subprotocols over in the scope (uvicorn takes the header away).
    protocols = [str(p).strip() for p in websocket.scope.get("subprotocols") or ()]
    accept = "phoenix" if "phoenix" in protocols else None
    if token := bearer_token(websocket.headers.get("authorization")):
        return token, accept
    for protocol in protocols:
        if protocol.startswith(AUTH_PROTOCOL_PREFIX):
            # phoenix.js encodes with btoa (the standard alphabet, padding dropped); others use base64url
            encoded = protocol[len(AUTH_PROTOCOL_PREFIX) :].replace("-", "+").replace("_", "/")
            try:
                return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True).decode(), accept
            except (binascii.Error, UnicodeDecodeError):
                return None, accept
    return websocket.query_params.get("token"), accept


# A push to a topic the socket has not joined: Phoenix's own reason, and the code every refusal carries.
NOT_JOINED = {"reason": "unmatched topic", "code": "not_found", "message": "Join the topic first."}


class Channel(Protocol):
    """One joined topic of a socket (api/socket_channel.py's rooms, api/socket_user_channel.py's notices)."""

    join_ref: str | None
    leave: Callable[[], None]
    on_closed: Callable[[Any], None]

    async def join(self, hubs: SocketRoomHubs, payload: dict[str, Any]) -> dict[str, Any]: ...
    def release(self) -> None: ...
    async def handle(self, event: str, payload: dict[str, Any]) -> dict[str, Any]: ...


class RoomSocket:
    """One client's connection: reads frames, runs its channels, writes through a bounded queue."""

    def __init__(self, websocket: WebSocket, services: Services, hubs: SocketRoomHubs, limits: SocketLimits) -> None:
        self.ws, self.services, self.hubs, self.limits = websocket, services, hubs, limits
        self.actor: Actor | None = None
        self.token: str | None = None
        self.channels: dict[str, Channel] = {}  # by topic
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=limits.max_backlog)
        self.closing: tuple[int, str] | None = None
        self._frames = RateLimiter(Rate(limits.frames_burst, limits.frames_per_second))

    async def serve(self) -> None:
        """The connection's whole life: authenticate, then read until it ends; tidy up after."""
        token, subprotocol = socket_token(self.ws)
        actor = await self.services.tokens.authenticate_token(token)
        if actor is None:
            await self.ws.close(code=CLOSE_UNAUTHORIZED, reason="a valid token is needed")
            return
        self.actor, self.token = actor, token
        await self.ws.accept(subprotocol=subprotocol)
        stop_watching = self.services.session_watch.watch(actor, self._check_token)
        writer = asyncio.create_task(self._write(), name="room socket writer")
        try:
            await self._read()
        finally:
            stop_watching()
            for channel in list(self.channels.values()):
                channel.leave()
            self.channels.clear()
            self._end_writer()
            with contextlib.suppress(asyncio.CancelledError):
                await writer

    async def _check_token(self) -> None:
        """The account's sessions or tokens changed: close at once if this socket's token is gone."""
        if await self.services.tokens.authenticate_token(self.token) is None:
            self.close(CLOSE_UNAUTHORIZED, "the token was revoked")

    def send(self, text: str) -> None:
        """Queue a frame; a client too far behind is closed instead of being fed an endless queue."""
        if self.closing is not None:
            return
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            self.close(CLOSE_TRY_AGAIN, "too far behind: rejoin to catch up")

    def close(self, code: int, reason: str) -> None:
        """End the connection soon (what is queued before goes first)."""
        if self.closing is None:
            self.closing = (code, reason)
            self._end_writer()

    def _end_writer(self) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)
        if self.queue.full():  # no room for the end mark: drop what is queued, the socket is closing
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(None)

    async def _write(self) -> None:
        try:
            while (text := await self.queue.get()) is not None:
                await self.ws.send_text(text)
            if self.closing is not None:
                await self.ws.close(code=self.closing[0], reason=self.closing[1])
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the client went away; the reader sees it too

    async def _read(self) -> None:
        while self.closing is None:
            try:
                message = await asyncio.wait_for(self.ws.receive(), timeout=self.limits.idle_timeout_s)
            except TimeoutError:
                self.close(CLOSE_POLICY, "no heartbeat")
                return
            if message["type"] == "websocket.disconnect":
                return
            await self._receive(message.get("text"), message.get("bytes"))

    async def _receive(self, text: str | None, data: bytes | None) -> None:
        if text is None:
            self.close(CLOSE_POLICY, "frames are JSON text")
            return
        if len(text) > self.limits.max_frame_bytes or len(text.encode()) > self.limits.max_frame_bytes:
            self.close(CLOSE_TOO_BIG, f"a frame is at most {self.limits.max_frame_bytes} bytes")
            return
        try:
            frame = parse_frame(text)
        except BadFrame as bad:
            self.send(encode(None, None, PHOENIX_TOPIC, ERROR, {"reason": str(bad)}))
            return
        try:
            self._frames.hit("frames", "Too many frames: slow down.")
        except RateLimited as limited:
            _status, body = status_and_body(limited)
            self.send(reply(frame, "error", body["error"]))
            return
        await self._dispatch(frame)

    async def _dispatch(self, frame: Frame) -> None:
        if frame.topic == PHOENIX_TOPIC and frame.event == HEARTBEAT:
            self.send(reply(frame, "ok"))
        elif frame.event == JOIN:
            await self._join(frame)
        elif frame.event == LEAVE:
            self._leave(frame)
        elif (channel := self.channels.get(frame.topic)) is not None and channel.join_ref == frame.join_ref:
            await self._push_to_channel(channel, frame)
        else:
            self.send(reply(frame, "error", NOT_JOINED))

    async def _join(self, frame: Frame) -> None:
        assert self.actor is not None
        if (earlier := self.channels.pop(frame.topic, None)) is not None:  # a rejoin replaces the channel
            earlier.leave()
        if len(self.channels) >= self.limits.max_channels:
            self.send(reply(frame, "error", {"reason": f"at most {self.limits.max_channels} channels a socket"}))
            return
        try:
            channel = self._open_channel(frame)
            response = await channel.join(self.hubs, frame.payload)
        except DomainError as refusal:
            self.send(reply(frame, "error", _join_refusal(refusal)))
            return
        except Exception:
            log.exception("room socket join of %r failed", frame.topic)
            self.send(reply(frame, "error", {"reason": "internal", "message": "Something went wrong on the server."}))
            return
        channel.on_closed = lambda closed: self._forget(frame.topic, closed)
        self.channels[frame.topic] = channel
        self.send(reply(frame, "ok", response))
        channel.release()

    def _open_channel(self, frame: Frame) -> Channel:
        """The channel a join's topic names: my notices (`user:<id>`) or a room (`room:<id>`)."""
        assert self.actor is not None
        if is_user_topic(frame.topic):
            return UserChannel(self.services, self.actor, frame.topic, frame.join_ref, self.send)
        room_id = parse_room_topic(frame.topic)
        return RoomChannel(self.services, self.actor, room_id, frame.join_ref, self.send)

    def _forget(self, topic: str, channel: Channel) -> None:
        if self.channels.get(topic) is channel:
            del self.channels[topic]

    def _leave(self, frame: Frame) -> None:
        channel = self.channels.pop(frame.topic, None)
        if channel is not None:
            channel.leave()
        self.send(reply(frame, "ok"))
        self.send(encode(frame.join_ref, frame.join_ref, frame.topic, "phx_close", {}))

    async def _push_to_channel(self, channel: Channel, frame: Frame) -> None:
        try:
            response = await channel.handle(frame.event, frame.payload)
        except DomainError as refusal:
            _status, body = status_and_body(refusal)
            self.send(reply(frame, "error", body["error"]))
            return
        except Exception:
            log.exception("room socket push %r failed", frame.event)
            self.send(reply(frame, "error", {"code": "internal", "message": "Something went wrong on the server."}))
            return
        self.send(reply(frame, "ok", response))


def _join_refusal(refusal: DomainError) -> dict[str, object]:
    """A refused join: a room one may not see answers exactly like no room at all."""
    _status, body = status_and_body(refusal)
    error = body["error"]
    reason = "unmatched topic" if error["code"] == "not_found" else error["code"]
    return {"reason": reason, **error}

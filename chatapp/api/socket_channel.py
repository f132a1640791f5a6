"""One joined `room:<id>` topic of a room socket: its join (with what the client missed), the pushes the
client sends (post, edit, delete, the AI) and the room's news it is sent (through api/socket_hub.py).

Every push is a domain operation as the socket's actor: the same authorization, limits and events as the
pages. A refusal answers `phx_reply` with status "error" and the REST API's error body."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from chatapp.api.schemas import AiReplyOut, MessageOut, ParticipantOut, RoomOut
from chatapp.api.socket_frames import encode
from chatapp.api.socket_hub import room_topic_name
from chatapp.domain.errors import NotFound, ValidationError
from chatapp.domain.models import Actor, CatchUp
from chatapp.domain.ports import utc_now
from chatapp.domain.services import Services
from chatapp.live.presence import presence_key, presence_meta

Handler = Callable[["RoomChannel", dict[str, Any]], Awaitable[dict[str, Any]]]


def _message_id(payload: dict[str, Any]) -> int:
    value = payload.get("message_id")
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError({"message_id": "Say which message (its id)."})
    return value


def _text(payload: dict[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str):
        raise ValidationError({name: f"{name} must be a string."})
    return value


def parse_room_topic(topic: str) -> int:
    """The room id of a `room:<id>` topic; NotFound (the "unmatched topic" answer) for anything else."""
    prefix, _, rest = topic.partition(":")
    if prefix != "room" or not rest.isdecimal() or len(rest) > 10:
        raise NotFound("unmatched topic")
    return int(rest)


def _since(payload: dict[str, Any]) -> tuple[int | None, datetime | None]:
    """The resume point of a join: the last message id seen, and the server time of the last news."""
    last_id, since = payload.get("last_message_id"), payload.get("since")
    if last_id is not None and (not isinstance(last_id, int) or isinstance(last_id, bool) or last_id < 0):
        raise ValidationError({"last_message_id": "last_message_id is a message id."})
    moment = None
    if since is not None:
        try:
            moment = datetime.fromisoformat(since) if isinstance(since, str) else None
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            raise ValidationError({"since": "since is an ISO 8601 time with its zone, as the server sent it."})
    return last_id, moment


def _missed(caught: CatchUp | None) -> dict[str, Any]:
    if caught is None:
        return {"reload": True}
    return {
        "reload": False,
        "new": [MessageOut.of(m).model_dump(mode="json") for m in caught.new],
        "edited": [MessageOut.of(m).model_dump(mode="json") for m in caught.edited],
        "deleted_ids": caught.deleted_ids,
    }


class RoomChannel:
    """A socket's channel of one room: a Member of the room's SocketRoomHub."""

    def __init__(self, services: Services, actor: Actor, room_id: int, join_ref: str | None, push) -> None:
        self.services, self.actor, self.room_id, self.join_ref = services, actor, room_id, join_ref
        self.participant_id: int | None = None
        self.leave: Callable[[], None] = lambda: None  # set once joined to the hub
        self.on_closed: Callable[[RoomChannel], None] = lambda _channel: None
        self.presence_state: Callable[[], dict[str, Any]] = dict
        self.gap_since: Callable[[], datetime | None] = lambda: None
        self._push = push
        self._held: list[str] | None = []  # pushes that came before the join's reply went out

    def push(self, text: str) -> None:
        """Queue a frame for the socket (held until the join's reply went out)."""
        if self._held is not None:
            self._held.append(text)
        else:
            self._push(text)

    def release(self) -> None:
        """The join's reply went out: send who is here (presence_state, as Phoenix does), then what came
        meanwhile, and from now on at once."""
        self._push(encode(self.join_ref, None, room_topic_name(self.room_id), "presence_state", self.presence_state()))
        held, self._held = self._held or [], None
        for text in held:
            self._push(text)

    def closed_by_server(self) -> None:
        self.leave()
        self.on_closed(self)

    async def join(self, hubs, payload: dict[str, Any]) -> dict[str, Any]:
        """Authorise, start receiving the room's news, and answer with the room and what was missed."""
        last_id, since = _since(payload)
        access = await self.services.rooms.get_room_access(self.actor, self.room_id)
        self.participant_id = access.me.id if access.me else None
        leave_hub = await hubs.join(self, self.room_id)
        meta = presence_meta(self.actor, access.me, "socket")
        untrack = hubs.presence.track(self.room_id, presence_key(self.actor), meta)

        def leave() -> None:
            untrack()
            leave_hub()

        self.leave = leave
        self.presence_state = lambda: hubs.presence.state(self.room_id)
        self.gap_since = lambda: hubs.gap_since(self.room_id)
        try:
            return await self._join_response(access, last_id, since)
        except Exception:
            self.leave()
            raise

    async def _join_response(self, access, last_id: int | None, since: datetime | None) -> dict[str, Any]:
        services, actor, room_id = self.services, self.actor, self.room_id
        people = await services.membership.list_participants(actor, room_id)
        reply = await services.ai.get_reply_in_progress(actor, room_id)
        response: dict[str, Any] = {
            "room": RoomOut.of_access(access).model_dump(mode="json"),
            "participant_id": self.participant_id,
            "participants": [ParticipantOut.of(p).model_dump(mode="json") for p in people],
            "ai_reply": AiReplyOut.of(reply).model_dump(mode="json") if reply else None,
            "server_time": utc_now().isoformat(),  # resume with it as "since"
        }
        if last_id is None:
            page = await services.chat.list_messages(actor, room_id)
            response["messages"] = [MessageOut.of(m).model_dump(mode="json") for m in page.messages]
            response["has_older"] = page.has_older
        else:
            late = self.gap_since()  # this process missed news: also what was written since, whatever its id
            missed = await services.chat.catch_up(actor, room_id, last_id, since, created_since=late)
            response["missed"] = _missed(missed)
        return response

    async def handle(self, event: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Do what the client pushed; the reply's response. NotFound for an event nobody knows."""
        handler = HANDLERS.get(event)
        if handler is None:
            raise NotFound(f"unknown event {event!r}")
        return await handler(self, payload)


async def _post(channel: RoomChannel, payload: dict[str, Any]) -> dict[str, Any]:
    client_id = payload.get("client_message_id")
    if client_id is not None and not isinstance(client_id, str):
        raise ValidationError({"client_message_id": "client_message_id must be a string."})
    chat = channel.services.chat
    message = await chat.post_message(
        channel.actor, channel.room_id, _text(payload, "body"), client_message_id=client_id
    )
    return {"message": MessageOut.of(message).model_dump(mode="json")}


async def _edit(channel: RoomChannel, payload: dict[str, Any]) -> dict[str, Any]:
    chat = channel.services.chat
    edited = await chat.update_message(channel.actor, channel.room_id, _message_id(payload), _text(payload, "body"))
    return {"message": MessageOut.of(edited).model_dump(mode="json")}


async def _delete(channel: RoomChannel, payload: dict[str, Any]) -> dict[str, Any]:
    await channel.services.chat.delete_message(channel.actor, channel.room_id, _message_id(payload))
    return {}


async def _ask_ai(channel: RoomChannel, _payload: dict[str, Any]) -> dict[str, Any]:
    reply = await channel.services.ai.start_reply(channel.actor, channel.room_id)
    return {"ai_reply": AiReplyOut.of(reply).model_dump(mode="json")}


async def _stop_ai(channel: RoomChannel, _payload: dict[str, Any]) -> dict[str, Any]:
    return {"stopped": await channel.services.ai.stop_reply(channel.actor, channel.room_id)}


async def _regenerate_ai(channel: RoomChannel, _payload: dict[str, Any]) -> dict[str, Any]:
    reply = await channel.services.ai.regenerate_reply(channel.actor, channel.room_id)
    return {"ai_reply": AiReplyOut.of(reply).model_dump(mode="json")}


HANDLERS: dict[str, Handler] = {
    "post": _post,
    "edit": _edit,
    "delete": _delete,
    "ask_ai": _ask_ai,
    "stop_ai": _stop_ai,
    "regenerate_ai": _regenerate_ai,
}

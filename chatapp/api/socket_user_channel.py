"""The `user:<my id>` topic of a room socket: my own notices. The join's reply lists the rooms I am in;
then `room_joined` (with the room) when I come into one (I joined or created it, followed a link, an
owner added my bot, I was let back in) and `room_left` (`reason`: left, removed or deleted) when I am
out of one. A bot joins its own topic to learn which rooms to join, instead of polling GET /rooms.

Only my own topic: anyone else's answers exactly like a topic that does not exist."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chatapp.api.schemas import RoomOut
from chatapp.api.socket_frames import ERROR, encode
from chatapp.domain.errors import NotFound
from chatapp.domain.events import RoomListChanged
from chatapp.domain.models import Actor
from chatapp.domain.services import Services

USER_TOPIC_PREFIX = "user:"


def is_user_topic(topic: str) -> bool:
    """Whether a topic names a user's notices (`user:<id>`), mine or not."""
    return topic.startswith(USER_TOPIC_PREFIX)


class UserChannel:
    """A socket's channel of its own user's notices."""

    def __init__(self, services: Services, actor: Actor, topic: str, join_ref: str | None, push) -> None:
        self.services, self.actor, self.topic, self.join_ref = services, actor, topic, join_ref
        self.leave: Callable[[], None] = lambda: None
        self.on_closed: Callable[[Any], None] = lambda _channel: None
        self._push = push
        self._held: list[str] | None = []  # notices that came before the join's reply went out

    async def join(self, _hubs: object, _payload: dict[str, Any]) -> dict[str, Any]:
        """Authorise (my own topic only), start hearing my notices, and answer with my rooms."""
        if self.actor.user_id is None or self.topic != f"{USER_TOPIC_PREFIX}{self.actor.user_id}":
            raise NotFound("unmatched topic")
        self.leave = self.services.session_watch.watch_room_list(self.actor, self._changed)
        try:
            lobby = await self.services.rooms.list_rooms(self.actor)
        except Exception:
            self.leave()
            raise
        return {"rooms": [RoomOut.of_summary(s).model_dump(mode="json") for s in lobby.my_rooms]}

    def release(self) -> None:
        """The join's reply went out: send what came meanwhile, and from now on at once."""
        held, self._held = self._held or [], None
        for text in held:
            self._push(text)

    async def handle(self, event: str, _payload: dict[str, Any]) -> dict[str, Any]:
        """Nothing is pushed to this topic but leave (which the socket handles)."""
        raise NotFound(f"unknown event {event!r}")

    async def _changed(self, event: RoomListChanged | None) -> None:
        if event is None:  # notices may have been missed: the client rejoins, and gets the list again
            self._send(ERROR, {})
            self.leave()
            self.on_closed(self)
        elif event.change == "joined":
            try:
                access = await self.services.rooms.get_room_access(self.actor, event.room_id)
            except NotFound:  # out of it again already: its room_left follows
                return
            self._send("room_joined", {"room": RoomOut.of_access(access).model_dump(mode="json")})
        else:
            self._send("room_left", {"room_id": event.room_id, "reason": event.change})

    def _send(self, event: str, payload: dict[str, Any]) -> None:
        text = encode(self.join_ref, None, self.topic, event, payload)
        if self._held is not None:
            self._held.append(text)
        else:
            self._push(text)

"""The names of the room's live events, said once: the server emits them and the page script reads
them from the server (MessageList's `events` prop), so the two cannot drift apart."""

from __future__ import annotations

from typing import Any

from chatapp.domain.events import AiReplyDelta, Event

MESSAGES_EVENT = "chatapp:messages"  # new or edited messages: {"room", "seq", "messages": [payload, ...]}
AI_EVENT = "chatapp:ai"  # the AI's reply started, grew, ended, or a notice: {"room", "seq", "type", ...}
DELETED_EVENT = "chatapp:deleted"  # a message was deleted: {"room", "seq", "id", "at"}

EVENT_NAMES = {"messages": MESSAGES_EVENT, "ai": AI_EVENT, "deleted": DELETED_EVENT}


def ai_event_data(room_id: int, event: Event) -> dict[str, Any]:
    """An AI event (started, delta, ended, notice) as AI_EVENT carries it: its kind as "type", the room
    said once as "room"; a delta without its reply's id (the one "started" announced: 28 bytes less per
    delta, the hot path)."""
    data = {"room": room_id, "type": event.kind, **event.to_dict()}
    data.pop("kind", None)
    data.pop("room_id", None)
    if isinstance(event, AiReplyDelta):
        data.pop("reply_id", None)
    return data

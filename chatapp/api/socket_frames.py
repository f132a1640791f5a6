"""Phoenix Channels v2 frames: `[join_ref, ref, topic, event, payload]` as JSON text, read and written.

Pure functions: the room socket (api/socket.py) reads every frame through `parse_frame`, which refuses
anything that is not exactly that shape, and writes every frame through `encode`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

PHOENIX_TOPIC = "phoenix"  # heartbeats
JOIN, LEAVE, REPLY, CLOSE, ERROR, HEARTBEAT = (
    "phx_join",
    "phx_leave",
    "phx_reply",
    "phx_close",
    "phx_error",
    "heartbeat",
)
MAX_REF_CHARS = 64
MAX_TOPIC_CHARS = 128
MAX_EVENT_CHARS = 64


class BadFrame(ValueError):
    """A frame that is not a Phoenix v2 frame; the message says what is wrong (safe to send back)."""


@dataclass(frozen=True, slots=True)
class Frame:
    join_ref: str | None
    ref: str | None
    topic: str
    event: str
    payload: dict[str, Any]


def _ref(value: object, name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or len(value) > MAX_REF_CHARS:
        raise BadFrame(f"{name} must be a string of at most {MAX_REF_CHARS} characters or null")
    return value


def _name(value: object, name: str, limit: int) -> str:
    if not isinstance(value, str) or not value or len(value) > limit:
        raise BadFrame(f"{name} must be a non-empty string of at most {limit} characters")
    return value


def parse_frame(text: str) -> Frame:
    """The frame in a text message; BadFrame when it is not JSON of the v2 shape."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise BadFrame("a frame is a JSON array: [join_ref, ref, topic, event, payload]") from exc
    if not isinstance(data, list) or len(data) != 5:
        raise BadFrame("a frame is a JSON array of five: [join_ref, ref, topic, event, payload]")
    join_ref, ref, topic, event, payload = data
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise BadFrame("the payload must be a JSON object")
    return Frame(
        join_ref=_ref(join_ref, "join_ref"),
        ref=_ref(ref, "ref"),
        topic=_name(topic, "topic", MAX_TOPIC_CHARS),
        event=_name(event, "event", MAX_EVENT_CHARS),
        payload=payload,
    )


def encode(join_ref: str | None, ref: str | None, topic: str, event: str, payload: dict[str, Any]) -> str:
    """One frame as the text of a WebSocket message."""
    return json.dumps([join_ref, ref, topic, event, payload], separators=(",", ":"), ensure_ascii=False)


def reply(frame: Frame, status: str, response: dict[str, Any] | None = None) -> str:
    """The phx_reply to a frame: {"status": "ok" | "error", "response": {...}}."""
    return encode(frame.join_ref, frame.ref, frame.topic, REPLY, {"status": status, "response": response or {}})

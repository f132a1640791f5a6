"""The AI participant's plain domain objects: a room's AI settings, a reply being written, what replies cost."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from chatapp.domain.models import AiMode, MessageStatus


@dataclass(frozen=True, slots=True)
class RoomAiSettings:
    """The room owner's choices for the AI participant."""

    mode: AiMode
    instruction: str
    model: str | None


@dataclass(frozen=True, slots=True)
class ReplyRecord:
    """What is saved with a finished AI reply."""

    status: MessageStatus
    model: str
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: int


@dataclass(frozen=True, slots=True)
class ModelUsage:
    """What a room's AI replies cost with one model: summed provider token counts and, where
    litellm knows the model's prices, the cost in US dollars."""

    model: str
    replies: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None  # None when the price of some of these replies is unknown


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """One AI reply's usage, as recorded for the room's owners."""

    model: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    estimated: bool  # True when the provider did not report usage (a stopped reply) and we counted


@dataclass(frozen=True, slots=True)
class RoomAiView:
    """A room's AI settings as its settings panel shows them, with the choices allowed."""

    settings: RoomAiSettings
    models: tuple[str, ...]  # the models the room may choose from (CHATAPP_AI_MODELS)
    default_model: str  # used when the room chose none ("" when the server has no model)
    can_edit: bool
    max_instruction_chars: int


@dataclass(frozen=True, slots=True)
class ReplyInProgress:
    """The AI's reply being written in a room, as it is now: a page opened mid-reply starts from it."""

    reply_id: str
    room_id: int
    text: str  # everything so far
    replaces_id: int | None = None  # the reply it regenerates, if any


@dataclass(frozen=True, slots=True)
class RunningReplyRecord:
    """The stored trace of a reply being written (one per room, whichever process writes it): which
    process (`origin`), its text as of its last beat, and when that was."""

    room_id: int
    reply_id: str
    origin: str
    replaces_id: int | None
    text: str
    started_at: datetime
    beat_at: datetime

"""What the domain needs from the outside world. chatapp/store implements these."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from chatapp.domain.events import Event
from chatapp.domain.models import (
    Actor,
    Invite,
    Message,
    ModelUsage,
    Participant,
    ParticipantKind,
    ParticipantState,
    ReplyRecord,
    Role,
    Room,
    RoomAiSettings,
    RoomSummary,
    UsageRecord,
    User,
    UserCredentials,
    Visibility,
)

T = TypeVar("T")


class UsersRepo(Protocol):
    def add(self, *, username: str, display_name: str, password_hash: str, now: datetime) -> User: ...
    def get(self, user_id: int) -> User | None: ...
    def credentials_by_username(self, username: str) -> UserCredentials | None: ...
    def credentials(self, user_id: int, *, lock: bool = False) -> UserCredentials | None: ...
    def set_password_hash(self, user_id: int, password_hash: str, now: datetime) -> None: ...


class SessionsRepo(Protocol):
    def add(self, *, user_id: int, token_hash: str, created_at: datetime, expires_at: datetime) -> int: ...
    def actor_for(self, token_hash: str, now: datetime) -> Actor | None: ...
    def delete_by_hash(self, token_hash: str) -> int | None: ...
    def delete_for_user(self, user_id: int) -> int: ...
    def delete_expired_for_user(self, user_id: int, now: datetime) -> int: ...


class RoomsRepo(Protocol):
    def add(self, *, name: str, topic: str, visibility: Visibility, now: datetime) -> Room: ...
    def get(self, room_id: int) -> Room | None: ...
    def with_participant(self, room_id: int, actor: Actor) -> tuple[Room, Participant | None] | None: ...
    def set_options(self, room_id: int, *, members_can_invite: bool, guests_can_use_ai: bool) -> None: ...
    def ai_settings(self, room_id: int) -> RoomAiSettings: ...
    def set_ai_settings(self, room_id: int, settings: RoomAiSettings) -> None: ...
    def summaries_for(self, actor: Actor) -> list[RoomSummary]: ...
    def public_not_joined(self, actor: Actor, limit: int) -> list[Room]: ...


class ParticipantsRepo(Protocol):
    def add(
        self,
        *,
        room_id: int,
        kind: ParticipantKind,
        display_name: str,
        role: Role,
        now: datetime,
        user_id: int | None = None,
        guest_id: int | None = None,
    ) -> Participant: ...
    def for_user(self, room_id: int, user_id: int) -> Participant | None: ...
    def membership(self, room_id: int, actor: Actor) -> Participant | None: ...
    def get(self, participant_id: int) -> Participant | None: ...
    def set_role(self, participant_id: int, role: Role) -> Participant: ...
    def set_state(
        self,
        participant_id: int,
        state: ParticipantState,
        *,
        removed_by: int | None = None,
        now: datetime | None = None,
    ) -> Participant: ...
    def count_owners(self, room_id: int) -> int: ...
    def convert_guest(self, guest_id: int, user_id: int) -> int: ...
    def list(self, room_id: int) -> list[Participant]: ...
    def ai_of(self, room_id: int) -> Participant | None: ...
    def sync_ai(self, *, display_name: str, now: datetime) -> int: ...


class MessagesRepo(Protocol):
    def add(self, *, room_id: int, participant_id: int, body: str, now: datetime) -> Message: ...
    def add_reply(
        self, *, room_id: int, participant_id: int, body: str, now: datetime, record: ReplyRecord
    ) -> Message: ...
    def replace_reply(self, message_id: int, *, body: str, now: datetime, record: ReplyRecord) -> Message: ...
    def latest_by(self, room_id: int, participant_id: int) -> Message | None: ...
    def mark_deleted(self, message_id: int, *, by: int, now: datetime) -> None: ...
    def get(self, message_id: int) -> Message | None: ...
    def newest_before(self, room_id: int, before_id: int | None, limit: int) -> list[Message]: ...
    def oldest_after(self, room_id: int, after_id: int, limit: int) -> list[Message]: ...


class AiUsageRepo(Protocol):
    def record(self, *, room_id: int, usage: UsageRecord, now: datetime) -> None: ...
    def for_room(self, room_id: int) -> list[ModelUsage]: ...


class GuestsRepo(Protocol):
    def add(self, *, display_name: str, now: datetime) -> int: ...
    def add_session(self, *, guest_id: int, token_hash: str, created_at: datetime, expires_at: datetime) -> None: ...
    def actor_for(self, token_hash: str, now: datetime) -> Actor | None: ...
    def delete_session(self, token_hash: str) -> int | None: ...
    def delete_sessions(self, guest_id: int) -> int: ...


class InvitesRepo(Protocol):
    def add(
        self,
        *,
        room_id: int,
        token_hash: str,
        created_by: int,
        now: datetime,
        expires_at: datetime | None,
        max_uses: int | None,
    ) -> Invite: ...
    def get(self, invite_id: int) -> Invite | None: ...
    def by_hash(self, token_hash: str, *, lock: bool = False) -> Invite | None: ...
    def for_room(self, room_id: int) -> list[Invite]: ...
    def count_used(self, invite_id: int) -> None: ...
    def revoke(self, invite_id: int, now: datetime) -> None: ...


class UnitOfWork(Protocol):
    users: UsersRepo
    sessions: SessionsRepo
    rooms: RoomsRepo
    participants: ParticipantsRepo
    messages: MessagesRepo
    ai_usage: AiUsageRepo
    guests: GuestsRepo
    invites: InvitesRepo


class Transactor(Protocol):
    """Runs a function with a unit of work off the event loop, in one transaction."""

    async def run(self, work: Callable[[UnitOfWork], T], *, write: bool = False) -> T: ...


Handler = Callable[[Event], Awaitable[None] | None]


class PubSub(Protocol):
    """Publish events to topics; subscribers get them on the event loop."""

    async def publish(self, topic: str, event: Event) -> None: ...
    def subscribe(self, topic: str, handler: Handler) -> Callable[[], None]: ...


Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The default clock: timezone-aware UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class LlmUsage:
    """Tokens a model reply cost, as the provider reported them."""

    prompt_tokens: int
    completion_tokens: int


class LlmStream(Protocol):
    """A model reply as it is generated: iterate for text deltas; `usage` is set once the provider
    reported it (at the end); `aclose` stops it, closing the connection so the provider stops too."""

    usage: LlmUsage | None

    def __aiter__(self) -> AsyncIterator[str]: ...
    async def aclose(self) -> None: ...


class LlmClient(Protocol):
    """The way to the language models (chatapp/llm.py implements it with litellm).

    Failures raise chatapp.domain.errors.LlmError, with a message that is safe to show.
    """

    async def stream(self, *, model: str, messages: list[dict[str, str]]) -> LlmStream: ...
    def count_tokens(self, model: str, text: str) -> int: ...
    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float | None: ...

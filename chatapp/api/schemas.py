"""What the REST API takes and gives, as Pydantic models (they make the OpenAPI document). Requests
refuse unknown fields; every response is built from a domain object by its `of` method."""

from __future__ import annotations

from datetime import datetime
from typing import Self

from pydantic import BaseModel, ConfigDict, Field

from chatapp.domain.models import (
    Actor,
    ApiToken,
    MessagePage,
    Room,
    RoomAccess,
    RoomSummary,
)


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    """A response read from a domain object's attributes of the same names (enums give their values)."""

    model_config = ConfigDict(from_attributes=True)

    @classmethod
    def of(cls, value: object) -> Self:
        return cls.model_validate(value)


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable: invalid, not_authenticated, missing_scope, forbidden, not_found, ...")
    message: str = Field(description="A sentence for people")
    fields: dict[str, str] | None = Field(None, description="With code invalid: what is wrong with each field")
    retry_after: int | None = Field(None, description="With code rate_limited: seconds until the next try")
    scope: str | None = Field(None, description="With code missing_scope: the scope the token lacks")


class ErrorOut(BaseModel):
    error: ErrorDetail


class UserOut(Out):
    id: int
    username: str
    display_name: str
    is_bot: bool
    bot_owner_id: int | None


class MeOut(BaseModel):
    id: int
    username: str
    display_name: str
    is_bot: bool
    scopes: list[str] = Field(description="What the token used for this request may do")
    token_id: int | None

    @classmethod
    def of(cls, actor: Actor) -> MeOut:
        return cls(
            id=actor.user_id or 0,
            username=actor.username,
            display_name=actor.display_name,
            is_bot=actor.is_bot,
            scopes=sorted(actor.scopes or ()),
            token_id=actor.token_id,
        )


class RoomOut(BaseModel):
    id: int
    name: str
    topic: str
    visibility: str = Field(description="public or private")
    ai_mode: str = Field(description="When the AI answers: off, mention or every")
    created_at: datetime
    my_role: str | None = Field(description="My role in the room; null when I only see it (a public room)")
    members_can_invite: bool
    guests_can_use_ai: bool

    @classmethod
    def of(cls, room: Room, role: str | None) -> RoomOut:
        return cls(
            id=room.id,
            name=room.name,
            topic=room.topic,
            visibility=room.visibility.value,
            ai_mode=room.ai_mode.value,
            created_at=room.created_at,
            my_role=role,
            members_can_invite=room.members_can_invite,
            guests_can_use_ai=room.guests_can_use_ai,
        )

    @classmethod
    def of_access(cls, access: RoomAccess) -> RoomOut:
        return cls.of(access.room, access.me.role.value if access.me else None)

    @classmethod
    def of_summary(cls, summary: RoomSummary) -> RoomOut:
        return cls.of(summary.room, summary.role.value)


class RoomsOut(BaseModel):
    rooms: list[RoomOut] = Field(description="Rooms I am in, newest activity first")
    public_rooms: list[RoomOut] = Field(description="Public rooms I could join")


class RoomCreate(Request):
    name: str
    topic: str = ""
    private: bool = False


class RoomUpdate(Request):
    """Only the fields given change; all of them or none (one refusal names every field it refuses)."""

    name: str | None = None
    topic: str | None = None
    ai_mode: str | None = Field(None, description="off, mention or every")
    ai_instruction: str | None = None
    ai_model: str | None = Field(None, description="One of the offered models; empty for the default")
    members_can_invite: bool | None = None
    guests_can_use_ai: bool | None = None
    signed_up_guests_become_members: bool | None = None


class RoomDelete(Request):
    confirm_name: str = Field(description="The room's name, as a check")


class ParticipantOut(Out):
    id: int
    kind: str = Field(description="user, guest, bot, webhook or ai")
    display_name: str
    role: str
    state: str
    joined_at: datetime
    bot_calls: str = Field(description="For a bot with an outgoing webhook: mention or every")


class BotAdd(Request):
    username: str = Field(description="The bot's username")


class RoleChange(Request):
    role: str = Field(description="owner, moderator or member")


class MessageOut(Out):
    id: int
    room_id: int
    participant_id: int
    author_name: str
    author_kind: str = Field(description="user, guest, bot, webhook or ai")
    body: str
    created_at: datetime
    status: str = Field(description="complete; an AI reply may be stopped or failed")
    edited_at: datetime | None
    client_message_id: str | None


class MessagePageOut(BaseModel):
    messages: list[MessageOut] = Field(description="Oldest first")
    has_older: bool
    has_newer: bool

    @classmethod
    def of(cls, page: MessagePage) -> MessagePageOut:
        return cls(
            messages=[MessageOut.of(m) for m in page.messages], has_older=page.has_older, has_newer=page.has_newer
        )


class MessageCreate(Request):
    body: str
    client_message_id: str | None = Field(
        None, description="Your id for this message (8-64 of A-Z a-z 0-9 _ -): a retry with it returns the first"
    )


class MessageEdit(Request):
    body: str


class AiReplyOut(Out):
    reply_id: str
    room_id: int
    text: str = Field(description="The reply so far")
    replaces_id: int | None


class StopOut(BaseModel):
    stopped: bool = Field(description="False when no reply was running")


class InviteCreate(Request):
    expires_in_days: float | None = Field(None, description="Omitted: the server's default; 0: never")
    max_uses: int | None = None


class InviteOut(Out):
    id: int
    created_by_name: str
    created_at: datetime
    expires_at: datetime | None
    max_uses: int | None
    uses: int
    revoked_at: datetime | None


class NewInviteOut(BaseModel):
    invite: InviteOut
    url_path: str = Field(description="The link's path (shown once): /join/<token>")


class TokenCreate(Request):
    name: str
    scopes: list[str] = Field(description="Any of read, write, ai, admin")
    expires_at: datetime | None = None
    bot_id: int | None = Field(None, description="One of my bots: the token is the bot's")


class TokenOut(BaseModel):
    id: int
    user_id: int = Field(description="Whose token: mine, or one of my bots'")
    name: str
    scopes: list[str]
    prefix: str = Field(description="Its first characters, to recognise it")
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def of(cls, token: ApiToken) -> TokenOut:
        return cls(
            id=token.id,
            user_id=token.user_id,
            name=token.name,
            scopes=sorted(token.scopes),
            prefix=token.prefix,
            created_at=token.created_at,
            expires_at=token.expires_at,
            last_used_at=token.last_used_at,
        )


class NewTokenOut(BaseModel):
    token: TokenOut
    value: str = Field(description="The token itself: shown once, never again")


class BotCreate(Request):
    username: str
    display_name: str


class WebhookCreate(Request):
    name: str = Field(description="How its messages are signed when the caller gives no username")


class WebhookOut(Out):
    id: int
    room_id: int
    participant_id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class NewWebhookOut(BaseModel):
    webhook: WebhookOut
    url_path: str = Field(description="POST messages here (below the site's address); shown only now")


class WebhookPost(Request):
    text: str = Field(description="The message (Markdown), checked like everyone's")
    username: str | None = Field(None, description="The name to show on this message instead of the webhook's")


class WebhookPosted(BaseModel):
    ok: bool = True
    message_id: int


class HookSet(Request):
    url: str = Field(description="http(s) URL called with each message meant for the bot")


class HookOut(BaseModel):
    bot_id: int
    url: str
    created_at: datetime


class NewHookOut(HookOut):
    secret: str = Field(description="Signs every call (X-Chatapp-Signature); shown only now")


class DeliveryOut(Out):
    id: int
    event_id: str
    room_id: int
    message_id: int
    status: str = Field(description="pending, delivered, failed or dropped")
    attempts: int
    http_status: int | None
    error: str
    created_at: datetime
    finished_at: datetime | None
    reply_message_id: int | None


class BotCallsChange(Request):
    calls: str = Field(description="mention (messages that mention the bot) or every (every person's message)")

"""Plain domain objects. Repositories return these; the UI reads them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from chatapp.domain.errors import not_a_member


class ParticipantKind(StrEnum):
    """Who stands behind a participant."""

    USER = "user"
    GUEST = "guest"
    AI = "ai"
    BOT = "bot"  # a bot account (a user with an owner), acting through its tokens
    WEBHOOK = "webhook"  # an incoming webhook of the room: anything holding its URL posts as it


class Role(StrEnum):
    """What a participant may do in a room."""

    OWNER = "owner"
    MODERATOR = "moderator"
    MEMBER = "member"
    GUEST = "guest"


class ParticipantState(StrEnum):
    """Whether a participant is still in the room."""

    ACTIVE = "active"
    LEFT = "left"  # may come back (join a public room again, or follow a link)
    REMOVED = "removed"  # removed by a moderator: cannot come back on their own


class AiMode(StrEnum):
    """When the room's AI participant answers."""

    OFF = "off"
    MENTION = "mention"
    EVERY = "every"


class BotCalls(StrEnum):
    """When a bot in a room with an outgoing webhook is called (the room's owners and moderators say)."""

    MENTION = "mention"  # a person's message that mentions it (@username)
    EVERY = "every"  # every person's message


class MessageStatus(StrEnum):
    """How a message ended: AI replies can be stopped or fail part-way."""

    COMPLETE = "complete"
    STOPPED = "stopped"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # the process writing it died: its text as of its last beat


class Visibility(StrEnum):
    """Whether non-participants can find and join a room."""

    PUBLIC = "public"
    PRIVATE = "private"


class Scope(StrEnum):
    """What a personal access token may do. A browser session may do everything its person may."""

    READ = "read"  # see rooms, people and messages
    WRITE = "write"  # post, edit and delete one's own messages; create, join and leave rooms
    AI = "ai"  # ask the AI, stop and regenerate its replies
    ADMIN = "admin"  # run the rooms one owns or moderates; manage one's own tokens and bots


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    display_name: str
    created_at: datetime
    bot_owner_id: int | None = None  # set for a bot account: the user who created it

    @property
    def is_bot(self) -> bool:
        return self.bot_owner_id is not None


@dataclass(frozen=True, slots=True)
class UserCredentials:
    user: User
    password_hash: str


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting: the first argument of every public domain operation. A signed-in user has a
    user_id; a guest (someone who joined by an invite link) has a guest_id instead."""

    user_id: int | None
    username: str
    display_name: str
    guest_id: int | None = None
    scopes: frozenset[Scope] | None = None  # a token's scopes; None: a browser session, no narrowing
    token_id: int | None = None  # the personal access token it acts through, if any
    is_bot: bool = False

    @property
    def is_guest(self) -> bool:
        return self.guest_id is not None

    def may(self, scope: Scope) -> bool:
        """Whether the way this actor signed in allows `scope` (a token with it, or a browser session)."""
        return self.scopes is None or scope in self.scopes


@dataclass(frozen=True, slots=True)
class Room:
    id: int
    name: str
    topic: str
    visibility: Visibility
    created_at: datetime
    ai_mode: AiMode = AiMode.MENTION
    members_can_invite: bool = False
    guests_can_use_ai: bool = True
    signed_up_guests_become_members: bool = False  # else they stay guests until an owner or moderator says

    @property
    def options(self) -> RoomOptions:
        """What the owner allows here, as one value."""
        return RoomOptions(self.members_can_invite, self.guests_can_use_ai, self.signed_up_guests_become_members)

    @property
    def is_private(self) -> bool:
        return self.visibility is Visibility.PRIVATE


@dataclass(frozen=True, slots=True)
class RoomOptions:
    """What the owner allows in a room."""

    members_can_invite: bool = False
    guests_can_use_ai: bool = True
    signed_up_guests_become_members: bool = False


@dataclass(frozen=True, slots=True)
class Participant:
    id: int
    room_id: int
    kind: ParticipantKind
    display_name: str
    role: Role
    joined_at: datetime
    user_id: int | None = None
    guest_id: int | None = None
    state: ParticipantState = ParticipantState.ACTIVE
    invite_id: int | None = None  # the link they came in by, if any
    removed_by: int | None = None  # the participant who removed them (state removed)
    bot_calls: BotCalls = BotCalls.MENTION  # for a bot with an outgoing webhook: which messages call it

    @property
    def can_moderate(self) -> bool:
        """Owners and moderators remove people and delete messages."""
        return self.role in (Role.OWNER, Role.MODERATOR)


@dataclass(frozen=True, slots=True)
class Message:
    id: int
    room_id: int
    participant_id: int
    author_name: str
    author_kind: ParticipantKind
    body: str
    created_at: datetime
    status: MessageStatus = MessageStatus.COMPLETE
    edited_at: datetime | None = None  # set when the message was replaced (edited, or a regenerated AI reply)
    client_message_id: str | None = None  # the sender's own id for it (a resend finds the first copy)


@dataclass(frozen=True, slots=True)
class MessagePage:
    """A slice of a room's history, oldest first; `has_older` says whether to offer more."""

    messages: list[Message]
    has_older: bool
    has_newer: bool = False  # for a page read forwards (after an id)


@dataclass(frozen=True, slots=True)
class CatchUp:
    """What a view of a room missed: new messages, messages replaced in place (edited) since a
    moment, and the ids of those deleted since then; each oldest first."""

    new: list[Message]
    edited: list[Message]
    deleted_ids: list[int]


@dataclass(frozen=True, slots=True)
class RoomSummary:
    """A lobby row: a room, my role in it, and its newest message if any."""

    room: Room
    role: Role
    last_message: Message | None


@dataclass(frozen=True, slots=True)
class Lobby:
    my_rooms: list[RoomSummary]
    public_rooms: list[Room]


@dataclass(frozen=True, slots=True)
class RoomAccess:
    """What an actor may do in a room they can see."""

    room: Room
    me: Participant | None

    @property
    def member(self) -> Participant:
        """The actor's participant, for operations that need one: Forbidden when they only view the room."""
        if self.me is None:
            raise not_a_member()
        return self.me

    @property
    def can_post(self) -> bool:
        return self.me is not None

    @property
    def can_join(self) -> bool:
        return self.me is None and not self.room.is_private

    @property
    def is_owner(self) -> bool:
        return self.me is not None and self.me.role is Role.OWNER

    @property
    def can_moderate(self) -> bool:
        return self.me is not None and self.me.can_moderate

    @property
    def may_ask_ai(self) -> bool:
        """Everyone in the room, except guests (by role: also those who have since signed up) where the
        owner has not allowed guests to ask the AI."""
        if self.me is None:
            return False
        return self.me.role is not Role.GUEST or self.room.guests_can_use_ai

    @property
    def can_invite(self) -> bool:
        """Owners and moderators; members too when the room allows it; guests never."""
        if self.me is None:
            return False
        return self.me.can_moderate or (self.me.role is Role.MEMBER and self.room.members_can_invite)


@dataclass(frozen=True, slots=True)
class Invite:
    """An invite link to a room (its token is never stored; only its hash is)."""

    id: int
    room_id: int
    created_by: int  # the participant who created it
    created_by_name: str
    created_at: datetime
    expires_at: datetime | None
    max_uses: int | None
    uses: int
    revoked_at: datetime | None

    def status(self, now: datetime) -> str:
        """ "active", "revoked", "expired" or "used up"."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        if self.max_uses is not None and self.uses >= self.max_uses:
            return "used up"
        return "active"


@dataclass(frozen=True, slots=True)
class NewInvite:
    """A freshly created invite: the raw token is shown once, to its creator."""

    invite: Invite
    token: str


@dataclass(frozen=True, slots=True)
class GuestPass:
    """What following an invite link as a guest gives: the room, and a new guest session token
    (None when the browser's guest session was reused)."""

    room_id: int
    actor: Actor
    token: str | None
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewSession:
    """A freshly issued session: the raw token goes to the browser once, never to storage."""

    user: User
    token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A personal access token of a person or a bot (its value is never stored; only its hash is)."""

    id: int
    user_id: int  # whose token: the person's, or the bot's
    name: str
    scopes: frozenset[Scope]
    prefix: str  # its first characters, to recognise it in a list
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclass(frozen=True, slots=True)
class NewApiToken:
    """A freshly created token: its value is shown once, to its creator."""

    token: ApiToken
    value: str


@dataclass(frozen=True, slots=True)
class IncomingWebhook:
    """A room's incoming webhook: its secret URL posts into the room as its participant (only the
    SHA-256 of the secret is stored)."""

    id: int
    room_id: int
    participant_id: int
    name: str
    created_by: int  # the participant who created it
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewIncomingWebhook:
    """A freshly created incoming webhook: the secret in its URL is shown once."""

    webhook: IncomingWebhook
    token: str


@dataclass(frozen=True, slots=True)
class OutgoingHook:
    """Where a bot is called when a room's message is for it. The signing secret is kept as it is (an
    HMAC needs it) and shown to the bot's owner only when it is made."""

    bot_id: int
    url: str
    secret: str
    created_at: datetime


class DeliveryStatus(StrEnum):
    """How a call of an outgoing webhook ended."""

    PENDING = "pending"
    DELIVERED = "delivered"  # answered 2xx (and its reply, if any, was posted)
    FAILED = "failed"  # no 2xx after every attempt, or refused (an address not allowed)
    DROPPED = "dropped"  # too many calls waiting: not attempted


@dataclass(frozen=True, slots=True)
class HookDelivery:
    """One call of a bot's outgoing webhook, for its owner to see."""

    id: int
    bot_id: int
    event_id: str
    room_id: int
    message_id: int
    status: DeliveryStatus
    attempts: int
    created_at: datetime
    http_status: int | None = None
    error: str = ""
    finished_at: datetime | None = None
    reply_message_id: int | None = None


@dataclass(frozen=True, slots=True)
class HookTarget:
    """A bot in a room that has an outgoing webhook: who it is there and where to call it."""

    participant: Participant
    bot: User
    hook: OutgoingHook

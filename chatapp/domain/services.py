"""The bundle of domain services that the composition root builds and the UI uses."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from chatapp.domain.accounts import Accounts
from chatapp.domain.ai import AiReplies
from chatapp.domain.ai_settings import AiSettings
from chatapp.domain.bot_hooks import OutgoingHooks
from chatapp.domain.chat import Chat
from chatapp.domain.invites import Invites
from chatapp.domain.live import LiveRooms, SessionWatch
from chatapp.domain.membership import Membership
from chatapp.domain.room_settings import RoomSettings
from chatapp.domain.rooms import Rooms
from chatapp.domain.tokens import ApiTokens
from chatapp.domain.webhooks import IncomingWebhooks


@dataclass(frozen=True)
class Services:
    accounts: Accounts
    rooms: Rooms
    membership: Membership
    chat: Chat
    live: LiveRooms
    session_watch: SessionWatch
    database_ok: Callable[[], Awaitable[bool]]
    bus_ok: Callable[[], Awaitable[bool]]  # this process hears the others (always, alone)
    ai: AiReplies
    ai_settings: AiSettings
    room_settings: RoomSettings
    invites: Invites
    tokens: ApiTokens
    webhooks: IncomingWebhooks
    bot_hooks: OutgoingHooks
    llm_warm_up: Callable[[], Awaitable[None]]

"""The unit of work: one session's worth of repositories, typed as the domain's ports."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlmodel import Session

from chatapp.domain.ports import (
    AiUsageRepo,
    ApiTokensRepo,
    GuestsRepo,
    IncomingWebhooksRepo,
    InvitesRepo,
    MessagesRepo,
    OutgoingHooksRepo,
    ParticipantsRepo,
    RoomsRepo,
    RunningRepliesRepo,
    SessionsRepo,
    UnitOfWork,
    UsersRepo,
)
from chatapp.store.repositories.accounts import SqlGuests, SqlSessions, SqlUsers
from chatapp.store.repositories.invites import SqlInvites
from chatapp.store.repositories.messages import SqlMessages
from chatapp.store.repositories.participants import SqlParticipants
from chatapp.store.repositories.rooms import SqlRooms
from chatapp.store.repositories.running_replies import SqlRunningReplies
from chatapp.store.repositories.tokens import SqlApiTokens
from chatapp.store.repositories.usage import SqlAiUsage
from chatapp.store.repositories.webhooks import SqlIncomingWebhooks, SqlOutgoingHooks


class SqlUnitOfWork:
    """One session's worth of repositories. Each attribute is declared as its port, so the type checker
    proves every repository implements it; the check below proves the whole is a UnitOfWork."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.users: UsersRepo = SqlUsers(session)
        self.sessions: SessionsRepo = SqlSessions(session)
        self.rooms: RoomsRepo = SqlRooms(session)
        self.participants: ParticipantsRepo = SqlParticipants(session)
        self.messages: MessagesRepo = SqlMessages(session)
        self.ai_usage: AiUsageRepo = SqlAiUsage(session)
        self.running_replies: RunningRepliesRepo = SqlRunningReplies(session)
        self.guests: GuestsRepo = SqlGuests(session)
        self.invites: InvitesRepo = SqlInvites(session)
        self.api_tokens: ApiTokensRepo = SqlApiTokens(session)
        self.incoming_webhooks: IncomingWebhooksRepo = SqlIncomingWebhooks(session)
        self.outgoing_hooks: OutgoingHooksRepo = SqlOutgoingHooks(session)


if TYPE_CHECKING:
    _CONFORMS: type[UnitOfWork] = SqlUnitOfWork  # the type checker's proof; nothing at run time

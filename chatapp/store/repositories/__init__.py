"""Repositories: SQL behind the domain's ports, one module per context; they return plain domain objects.

`accounts` (users, sessions, guests), `rooms`, `participants`, `messages`, `invites`, `usage` (the AI's),
`uow` (the unit of work holding one of each), `rows` (rows to domain objects, shared query pieces).
"""

from chatapp.store.repositories.accounts import SqlGuests, SqlSessions, SqlUsers
from chatapp.store.repositories.invites import SqlInvites
from chatapp.store.repositories.messages import SqlMessages
from chatapp.store.repositories.participants import SqlParticipants
from chatapp.store.repositories.rooms import SqlRooms
from chatapp.store.repositories.uow import SqlUnitOfWork
from chatapp.store.repositories.usage import SqlAiUsage

__all__ = [
    "SqlAiUsage",
    "SqlGuests",
    "SqlInvites",
    "SqlMessages",
    "SqlParticipants",
    "SqlRooms",
    "SqlSessions",
    "SqlUnitOfWork",
    "SqlUsers",
]

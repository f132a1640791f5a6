"""Who may do what in a room: the one place every operation asks (and the one wording of each refusal).

A room the actor may not see answers NotFound, exactly like no room (private rooms they are not in, and
for guests every room they are not in). One they see but are not in answers Forbidden for anything that
needs them in it; moderation and ownership are checked on top.

Every check names the token scope the operation needs (models.Scope): an actor acting through a personal
access token without it is refused first, whatever the room (MissingScope, before anything is read)."""

from __future__ import annotations

from chatapp.domain.errors import Forbidden, MissingScope, NotFound, not_a_member
from chatapp.domain.models import Actor, Participant, ParticipantState, RoomAccess, Scope
from chatapp.domain.ports import UnitOfWork

MAX_ID = 2**31 - 1
ONLY_MODERATORS = "Only the room's owners and moderators can do that."
ONLY_OWNERS = "Only the room's owner can do that."


def is_valid_id(value: object) -> bool:
    """True for an int that can be a row id (positive, fits a 32-bit column on PostgreSQL)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID


def require_scope(actor: Actor, scope: Scope) -> None:
    """MissingScope when the actor acts through a token without `scope` (a browser session has all)."""
    if not actor.may(scope):
        raise MissingScope(scope.value)


def require_browser(actor: Actor, refusal: str = "Sign in with a browser to do that.") -> None:
    """Forbidden for an actor acting through a token: what only the person at a browser may do."""
    if actor.token_id is not None:
        raise Forbidden(refusal)


def lock_room(uow: UnitOfWork, room_id: int) -> None:
    """Take the room's lock before changing its people or settings; NotFound for an id no room can have
    (it would not even fit the column)."""
    if not is_valid_id(room_id):
        raise NotFound("Room not found.")
    uow.rooms.lock(room_id)


def room_access(uow: UnitOfWork, actor: Actor, room_id: int, *, scope: Scope) -> RoomAccess:
    """What the actor may do in the room; NotFound for a room they may not see (a bot sees only the
    rooms it was added to)."""
    require_scope(actor, scope)
    found = uow.rooms.with_participant(room_id, actor) if is_valid_id(room_id) else None
    if found is None:
        raise NotFound("Room not found.")
    room, me = found
    if me is None and (room.is_private or actor.is_guest or actor.is_bot):
        raise NotFound("Room not found.")
    return RoomAccess(room=room, me=me)


def require_member(uow: UnitOfWork, actor: Actor, room_id: int, *, scope: Scope, to: str | None = None) -> RoomAccess:
    """room_access for operations that need the actor in the room; `to` names the operation in the
    refusal ("post": "Join the room to post.")."""
    access = room_access(uow, actor, room_id, scope=scope)
    if access.me is None:
        raise not_a_member(to)
    return access


def require_moderator(uow: UnitOfWork, actor: Actor, room_id: int, *, refusal: str = ONLY_MODERATORS) -> RoomAccess:
    """room_access for the room's owners and moderators only (a token needs the admin scope)."""
    access = require_member(uow, actor, room_id, scope=Scope.ADMIN)
    if not access.can_moderate:
        raise Forbidden(refusal)
    return access


def require_owner(uow: UnitOfWork, actor: Actor, room_id: int) -> RoomAccess:
    """room_access for the room's owners only (a token needs the admin scope)."""
    access = require_member(uow, actor, room_id, scope=Scope.ADMIN)
    if not access.is_owner:
        raise Forbidden(ONLY_OWNERS)
    return access


_IN_ROOM = (ParticipantState.ACTIVE,)


def target_participant(
    uow: UnitOfWork,
    room_id: int,
    participant_id: int,
    *,
    states: tuple[ParticipantState, ...] = _IN_ROOM,
    missing: str = "That person is not in this room.",
) -> Participant:
    """A participant of this room in one of `states` (by default: still in it), as the target of a
    moderation action; NotFound with `missing` otherwise."""
    target = uow.participants.get(participant_id) if is_valid_id(participant_id) else None
    if target is None or target.room_id != room_id or target.state not in states:
        raise NotFound(missing)
    return target

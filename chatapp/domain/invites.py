"""Invite links: created by those who may invite, followed by guests (who get a guest session) or by
signed-in users (who become members). Tokens are 32 random bytes, shown once, stored as SHA-256."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from chatapp.domain.access import is_valid_id, require_member, require_scope
from chatapp.domain.accounts import hash_token, new_token
from chatapp.domain.errors import Forbidden, NotFound, ValidationError
from chatapp.domain.events import ParticipantsChanged, RoomListChanged, room_topic, user_topic
from chatapp.domain.limits import SharedRateLimiter
from chatapp.domain.models import Actor, GuestPass, Invite, NewInvite, ParticipantState, Role, RoomAccess, Scope
from chatapp.domain.participants import enter_room
from chatapp.domain.ports import Clock, PubSub, Transactor, UnitOfWork, utc_now
from chatapp.domain.validation import display_name_error, name_in_use, one_line

MAX_EXPIRY_DAYS = 365
MAX_USES = 10_000
NAME_IN_USE = "That name is already used in this room; choose another."
GUEST_NAME_IN_USE = "Your guest name is already used in this room; create an account to join it under another name."


class InviteInvalid(NotFound):
    """An unknown, expired, revoked or used-up link: one message for all, revealing nothing else."""

    def __init__(self) -> None:
        super().__init__(
            "This invite link is not valid: it may have expired, been revoked or used up. Ask for a new one."
        )


@dataclass(frozen=True, slots=True)
class InvitePreview:
    """What the join page shows before anything changes: the room's name; and the room's id for
    someone already in it (they are taken straight there, even by a used-up link)."""

    room_name: str
    member_of_room_id: int | None = None


@dataclass(frozen=True)
class InvitePolicy:
    default_expiry_days: float = 7
    guest_session_days: float = 30
    reserved_names: tuple[str, ...] = ()  # names a guest may not take (the AI's)


class Invites:
    """The invites context."""

    def __init__(
        self,
        *,
        tx: Transactor,
        pubsub: PubSub,
        policy: InvitePolicy,
        join_limit: SharedRateLimiter | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._tx = tx
        self._pubsub = pubsub
        self.policy = policy
        self._join_limit = join_limit
        self._clock = clock

    async def create_invite(
        self, actor: Actor, room_id: int, *, expires_in_days: float | None = None, max_uses: int | None = None
    ) -> NewInvite:
        """A new link to the room (owners and moderators; members when the room allows it). The token
        is in the result once and never stored. expires_in_days: None for the default, 0 for never."""
        days = self.policy.default_expiry_days if expires_in_days is None else expires_in_days
        errors = {}
        if not 0 <= days <= MAX_EXPIRY_DAYS:
            errors["expires_in_days"] = f"Expiry must be up to {MAX_EXPIRY_DAYS} days (0: never)."
        if max_uses is not None and not 1 <= max_uses <= MAX_USES:
            errors["max_uses"] = f"Maximum uses must be between 1 and {MAX_USES:,} (or unlimited)."
        if errors:
            raise ValidationError(errors)
        token = new_token()

        def work(uow: UnitOfWork) -> Invite:
            access = require_member(uow, actor, room_id, scope=Scope.ADMIN)
            if not access.can_invite:
                raise Forbidden("You cannot invite people to this room.")
            now = self._clock()
            return uow.invites.add(
                room_id=room_id,
                token_hash=hash_token(token),
                created_by=access.member.id,
                now=now,
                expires_at=now + timedelta(days=days) if days else None,
                max_uses=max_uses,
            )

        return NewInvite(invite=await self._tx.run(work, write=True), token=token)

    async def list_invites(self, actor: Actor, room_id: int) -> list[Invite]:
        """The room's links, newest first, for those who may invite."""

        def work(uow: UnitOfWork) -> list[Invite]:
            if not require_member(uow, actor, room_id, scope=Scope.ADMIN).can_invite:
                raise Forbidden("You cannot see this room's invite links.")
            return uow.invites.for_room(room_id)

        return await self._tx.run(work)

    async def revoke_invite(self, actor: Actor, room_id: int, invite_id: int) -> None:
        """Revoke a link: owners and moderators any; whoever created one, their own."""

        def work(uow: UnitOfWork) -> None:
            access = require_member(uow, actor, room_id, scope=Scope.ADMIN)
            invite = uow.invites.get(invite_id) if is_valid_id(invite_id) else None
            if invite is None or invite.room_id != room_id:
                raise NotFound("That invite link does not exist.")
            own = invite.created_by == access.member.id
            if not (access.can_moderate or own):
                raise Forbidden("Only the room's owners and moderators can revoke this link.")
            uow.invites.revoke(invite.id, self._clock())

        await self._tx.run(work, write=True)

    async def get_invite_preview(self, token: str, actor: Actor | None = None) -> InvitePreview:
        """The room a link leads to, if the link is usable (or the actor is already in that room);
        changes nothing."""

        def work(uow: UnitOfWork) -> InvitePreview:
            invite = self._usable(uow, token, actor=actor)
            membership = uow.participants.membership(invite.room_id, actor) if actor is not None else None
            already_in = membership is not None and membership.state is ParticipantState.ACTIVE
            room = uow.rooms.get(invite.room_id)
            if room is None:  # deleted meanwhile (its links go with it)
                raise InviteInvalid()
            return InvitePreview(
                room_name=room.name,
                member_of_room_id=invite.room_id if already_in else None,
            )

        return await self._tx.run(work)

    async def accept_as_guest(
        self, token: str, display_name: str, *, guest: Actor | None = None, ip: str | None = None
    ) -> GuestPass:
        """Follow a link without an account: a guest (the browser's returning guest, or a new one with
        this display name and a new guest session) joins the room."""
        await self._count_join(ip)
        name = one_line(display_name)
        reserved = self.policy.reserved_names
        if guest is None and (error := display_name_error(name, reserved=reserved, typed=display_name)):
            raise ValidationError({"display_name": error})

        def work(uow: UnitOfWork) -> GuestPass:
            invite = self._usable(uow, token, lock=True, actor=guest)
            _refuse_a_taken_name(uow, invite.room_id, name, guest=guest)
            now = self._clock()
            actor, session_token, expires_at = guest, None, None
            if actor is None:
                guest_id = uow.guests.add(display_name=name, now=now)
                actor = Actor(user_id=None, username="", display_name=name, guest_id=guest_id)
                session_token = new_token()
                expires_at = now + timedelta(days=self.policy.guest_session_days)
                uow.guests.add_session(
                    guest_id=guest_id, token_hash=hash_token(session_token), created_at=now, expires_at=expires_at
                )
            self._enter(uow, invite, actor)
            return GuestPass(room_id=invite.room_id, actor=actor, token=session_token, expires_at=expires_at)

        granted = await self._tx.run(work, write=True)
        await self._pubsub.publish(room_topic(granted.room_id), ParticipantsChanged(room_id=granted.room_id))
        return granted

    async def accept_as_user(self, actor: Actor, token: str, *, ip: str | None = None) -> int:
        """A signed-in user follows a link: they become a member of the room; returns its id. A bot
        comes into rooms only when their owners or moderators add it."""
        require_scope(actor, Scope.WRITE)
        if actor.is_bot:
            raise Forbidden("A bot cannot follow invite links: a room's owner or moderator adds it.")
        if actor.is_guest:
            return (await self.accept_as_guest(token, actor.display_name, guest=actor, ip=ip)).room_id
        await self._count_join(ip)

        def work(uow: UnitOfWork) -> tuple[int, bool]:
            invite = self._usable(uow, token, lock=True, actor=actor)
            return invite.room_id, self._enter(uow, invite, actor)

        room_id, came_in = await self._tx.run(work, write=True)
        await self._pubsub.publish(room_topic(room_id), ParticipantsChanged(room_id=room_id))
        if came_in and actor.user_id is not None:
            await self._pubsub.publish(user_topic(actor.user_id), RoomListChanged(actor.user_id, room_id, "joined"))
        return room_id

    async def _count_join(self, ip: str | None) -> None:
        if self._join_limit is not None and ip:
            await self._join_limit.hit(f"ip:{ip}", "Too many invite links followed from your network.")

    def _usable(self, uow: UnitOfWork, token: str, *, lock: bool = False, actor: Actor | None = None) -> Invite:
        """The invite, if it may let someone in; someone already in its room is let through whatever
        its state (a used-up link still takes them back to the room). With `lock`, the room is locked
        first and then the invite, in the order removals and deletions take them (no deadlock), and
        whoever joins meanwhile waits (two guests cannot both take one name)."""
        invite = _find(uow, token)
        if lock:
            uow.rooms.lock(invite.room_id)
            invite = _find(uow, token, lock=True)
        if invite.status(self._clock()) != "active" or not _creator_may_invite(uow, invite):
            earlier = uow.participants.membership(invite.room_id, actor) if actor is not None else None
            if earlier is None or earlier.state is not ParticipantState.ACTIVE:
                raise InviteInvalid()
        return invite

    def _enter(self, uow: UnitOfWork, invite: Invite, actor: Actor) -> bool:
        """Put the actor in the invite's room; a use is counted only when someone new comes in (then
        True)."""
        before = uow.participants.membership(invite.room_id, actor)
        participant = enter_room(uow, actor, invite.room_id, Role.MEMBER, self._clock(), invite_id=invite.id)
        came_in = before is None or before.state != participant.state
        if came_in:
            uow.invites.count_used(invite.id)
        return came_in


def _find(uow: UnitOfWork, token: str, *, lock: bool = False) -> Invite:
    invite = uow.invites.by_hash(hash_token(token), lock=lock) if _plausible(token) else None
    if invite is None:
        raise InviteInvalid()
    return invite


def _refuse_a_taken_name(uow: UnitOfWork, room_id: int, name: str, *, guest: Actor | None) -> None:
    """A guest may not come into a room under the name of someone who is (or was: their messages still
    show it) in it, the AI included, compared by room_name_key; a returning guest's name is checked when
    they are new to this room. People with accounts may share names: their usernames tell them apart."""
    if guest is not None:
        if uow.participants.membership(room_id, guest) is not None:
            return  # back as the participant they were
        name = guest.display_name
    if name_in_use(name, uow.participants.display_names(room_id)):
        raise ValidationError({"display_name": NAME_IN_USE if guest is None else GUEST_NAME_IN_USE})


def _creator_may_invite(uow: UnitOfWork, invite: Invite) -> bool:
    """A link lets people in only while whoever made it may still invite (not removed, not a member
    of a room that stopped letting members invite)."""
    creator = uow.participants.get(invite.created_by)
    room = uow.rooms.get(invite.room_id)
    if creator is None or room is None or creator.state is not ParticipantState.ACTIVE:
        return False
    return RoomAccess(room=room, me=creator).can_invite


def _plausible(token: str) -> bool:
    """Shaped like one of our tokens (43 URL-safe characters): anything else is not even looked up."""
    return isinstance(token, str) and len(token) == 43 and all(c.isalnum() or c in "-_" for c in token)

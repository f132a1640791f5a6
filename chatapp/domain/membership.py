"""Membership: who is in a room and as what. Join, leave, roles, removal and letting back in.

Every change is one transaction under the room's lock (two owners stepping down at once must not leave a
room without one) and is told to the room after it commits."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from chatapp.domain.access import lock_room, require_member, require_moderator, room_access, target_participant
from chatapp.domain.errors import Conflict, Forbidden, NotFound, ValidationError
from chatapp.domain.events import (
    Event,
    ParticipantRemoved,
    ParticipantsChanged,
    RoomListChanged,
    room_topic,
    user_topic,
)
from chatapp.domain.models import Actor, Participant, ParticipantKind, ParticipantState, Role, Scope
from chatapp.domain.participants import bot_actor, enter_room, place_in_people_list, step_down
from chatapp.domain.ports import Clock, PubSub, Transactor, UnitOfWork, utc_now
from chatapp.domain.validation import one_line


@dataclass(frozen=True, slots=True)
class Removal:
    """What removing someone did: their name, and how many others came in by the invite link they
    came in by when it was kept for them (0: it was revoked, or they came in another way)."""

    name: str
    link_kept_for: int


class Membership:
    """The membership context."""

    def __init__(self, *, tx: Transactor, pubsub: PubSub, clock: Clock = utc_now) -> None:
        self._tx = tx
        self._pubsub = pubsub
        self._clock = clock

    async def _tell(self, room_id: int, *events: Event) -> None:
        for event in events:
            await self._pubsub.publish(room_topic(room_id), event)

    async def _tell_user(self, user_id: int | None, room_id: int, change: str) -> None:
        """Tell a person or bot (not a guest, the AI or a webhook: no user) their rooms changed."""
        if user_id is not None:
            await self._pubsub.publish(user_topic(user_id), RoomListChanged(user_id, room_id, change))

    async def join(self, actor: Actor, room_id: int) -> Participant:
        """Join a public room as a member (idempotent); someone removed from it cannot."""

        def work(uow: UnitOfWork) -> tuple[Participant, bool]:
            access = room_access(uow, actor, room_id, scope=Scope.WRITE)
            if access.me is not None:
                return access.me, False
            return enter_room(uow, actor, room_id, Role.MEMBER, self._clock()), True

        try:
            participant, created = await self._tx.run(work, write=True)
        except Conflict:  # a concurrent join of the same user won: theirs is ours
            return await self._tx.run(lambda uow: require_member(uow, actor, room_id, scope=Scope.WRITE).member)
        if created:
            await self._tell(room_id, ParticipantsChanged(room_id=room_id))
            await self._tell_user(actor.user_id, room_id, "joined")
        return participant

    async def add_bot(self, actor: Actor, room_id: int, bot_username: str) -> Participant:
        """Owners and moderators add a bot (by its username) to the room as a member; a bot that left
        or was removed comes back. The bot then sees this room, and only the rooms it was added to."""

        def work(uow: UnitOfWork) -> tuple[Participant, bool]:
            lock_room(uow, room_id)
            require_moderator(uow, actor, room_id)
            bot = uow.users.by_username(one_line(bot_username).lower()) if isinstance(bot_username, str) else None
            if bot is None or not bot.is_bot:
                raise NotFound("No bot has that username.")
            earlier = uow.participants.membership(room_id, bot_actor(bot))
            if earlier is not None and earlier.state is ParticipantState.ACTIVE:
                return earlier, False
            if earlier is not None:
                back = replace(earlier, state=ParticipantState.ACTIVE, removed_by=None, joined_at=self._clock())
                return uow.participants.save(back), True
            added = uow.participants.add(
                room_id=room_id,
                kind=ParticipantKind.BOT,
                user_id=bot.id,
                display_name=bot.display_name,
                role=Role.MEMBER,
                now=self._clock(),
            )
            return added, True

        participant, changed = await self._tx.run(work, write=True)
        if changed:
            await self._tell(room_id, ParticipantsChanged(room_id=room_id))
            await self._tell_user(participant.user_id, room_id, "joined")
        return participant

    async def list_participants(self, actor: Actor, room_id: int) -> list[Participant]:
        """Everyone in a room the actor can see, in the people list's order."""

        def work(uow: UnitOfWork) -> list[Participant]:
            room_access(uow, actor, room_id, scope=Scope.READ)
            return sorted(uow.participants.list(room_id), key=place_in_people_list)

        return await self._tx.run(work)

    async def update_role(self, actor: Actor, room_id: int, participant_id: int, role: str) -> Participant:
        """The owner makes someone an owner, moderator or member; a moderator may make a member of a
        guest who has since created an account (guests without one stay guests; the AI has no role
        to change). An owner may step down only while another owner remains."""
        try:
            wanted = Role(role)
        except ValueError:
            raise ValidationError({"role": "Choose owner, moderator or member."}) from None

        def work(uow: UnitOfWork) -> Participant:
            lock_room(uow, room_id)
            me = require_moderator(uow, actor, room_id).member
            target = target_participant(uow, room_id, participant_id)
            if me.role is not Role.OWNER and not (target.role is Role.GUEST and wanted is Role.MEMBER):
                raise Forbidden("Only the room's owner can do that.")
            if target.kind is not ParticipantKind.USER or wanted is Role.GUEST:
                raise Forbidden("Only people with an account can be given a role.")
            if target.role is Role.OWNER and wanted is not Role.OWNER and uow.participants.count_owners(room_id) <= 1:
                raise Conflict("A room needs an owner: make someone else an owner first.")
            return uow.participants.save(replace(target, role=wanted))

        changed = await self._tx.run(work, write=True)
        await self._tell(room_id, ParticipantsChanged(room_id=room_id))
        return changed

    async def remove_participant(self, actor: Actor, room_id: int, participant_id: int) -> Removal:
        """Owners and moderators remove someone from the room (also someone who just left); they cannot
        come back by themselves: their own links are revoked, and so is the link they came in by
        unless others came in by it too (a team's shared link stays: the Removal says so, and the
        remover may revoke it). Moderators cannot remove owners or other moderators; nobody removes
        the AI (switch it off)."""

        def work(uow: UnitOfWork) -> tuple[Removal, int | None]:
            lock_room(uow, room_id)
            me = require_moderator(uow, actor, room_id).member
            # leaving does not dodge removal
            target = target_participant(
                uow, room_id, participant_id, states=(ParticipantState.ACTIVE, ParticipantState.LEFT)
            )
            _may_remove(uow, me, target)
            uow.participants.save(replace(target, state=ParticipantState.REMOVED, removed_by=me.id))
            kept = _revoke_their_links(uow, target, self._clock())
            return Removal(name=target.display_name, link_kept_for=kept), target.user_id

        removal, user_id = await self._tx.run(work, write=True)
        removed = ParticipantRemoved(room_id=room_id, participant_id=participant_id)
        await self._tell(room_id, removed, ParticipantsChanged(room_id=room_id))
        await self._tell_user(user_id, room_id, "removed")
        return removal

    async def list_removed_participants(self, actor: Actor, room_id: int) -> list[Participant]:
        """The people removed from the room, by name: for its owners and moderators, who may let them
        back in."""

        def work(uow: UnitOfWork) -> list[Participant]:
            require_moderator(uow, actor, room_id)
            return sorted(uow.participants.removed(room_id), key=lambda p: (p.display_name.lower(), p.id))

        return await self._tx.run(work)

    async def readmit(self, actor: Actor, room_id: int, participant_id: int) -> Participant:
        """Let someone who was removed back into the room, at once, as a member (a guest as a guest):
        their earlier role and the links revoked with the removal stay gone. Owners may let anyone
        back; moderators those they could have removed (not former owners or moderators) and whom no
        owner removed."""

        def work(uow: UnitOfWork) -> Participant:
            lock_room(uow, room_id)
            me = require_moderator(uow, actor, room_id).member
            removed = (ParticipantState.REMOVED,)
            missing = "That person was not removed from this room."
            target = target_participant(uow, room_id, participant_id, states=removed, missing=missing)
            _may_readmit(uow, me, target)
            now = self._clock()
            if target.guest_id is not None and not uow.guests.has_live_session(target.guest_id, now):
                raise Conflict(
                    f"{target.display_name}'s guest pass has ended, so they could not come back this way: "
                    "send them a new invite link instead."
                )
            back = replace(step_down(target), state=ParticipantState.ACTIVE, removed_by=None, joined_at=now)
            return uow.participants.save(replace(back, invite_id=None))  # not by a link: the one they had is gone

        back = await self._tx.run(work, write=True)
        await self._tell(room_id, ParticipantsChanged(room_id=room_id))
        await self._tell_user(back.user_id, room_id, "joined")
        return back

    async def leave(self, actor: Actor, room_id: int) -> None:
        """Leave the room (a public room can be joined again, as a member: whoever leaves gives up their
        role); the last owner must hand over first."""

        def work(uow: UnitOfWork) -> Participant:
            lock_room(uow, room_id)
            me = require_member(uow, actor, room_id, scope=Scope.WRITE).member
            if me.role is Role.OWNER and uow.participants.count_owners(room_id) <= 1:
                raise Conflict(
                    "You are the room's only owner: make someone else an owner before you leave, "
                    "or delete the room in its Settings."
                )
            return uow.participants.save(replace(step_down(me), state=ParticipantState.LEFT))

        left = await self._tx.run(work, write=True)
        gone = ParticipantRemoved(room_id=room_id, participant_id=left.id, left=True)
        await self._tell(room_id, gone, ParticipantsChanged(room_id=room_id))
        await self._tell_user(left.user_id, room_id, "left")


def _may_remove(uow: UnitOfWork, me: Participant, target: Participant) -> None:
    """Refuse a removal the remover may not make."""
    if target.id == me.id:
        raise Forbidden("To leave the room, use Leave room.")
    if target.kind is ParticipantKind.AI:
        raise Forbidden("The AI cannot be removed; the owner can switch it off in the room's settings.")
    if target.can_moderate and me.role is not Role.OWNER:
        raise Forbidden("Only an owner can remove an owner or a moderator.")
    if target.role is Role.OWNER and uow.participants.count_owners(me.room_id) <= 1:
        raise Conflict("The last owner cannot be removed.")


def _may_readmit(uow: UnitOfWork, me: Participant, target: Participant) -> None:
    """Refuse letting back in someone this moderator could not have removed, or whom an owner removed."""
    if me.role is Role.OWNER:
        return
    remover = uow.participants.get(target.removed_by) if target.removed_by else None
    if target.can_moderate or (remover is not None and remover.role is Role.OWNER):
        raise Forbidden("Only an owner can let back in a former owner or moderator, or someone an owner removed.")


def _revoke_their_links(uow: UnitOfWork, target: Participant, now: datetime) -> int:
    """Revoke the links the removed person made, and the one they came in by unless others came in by it
    too; how many others did (0 when it was revoked or they came another way)."""
    uow.invites.revoke_by(target.id, now)
    if target.invite_id is None:
        return 0
    shared_by = uow.participants.count_by_invite(target.invite_id, excluding=target.id)
    if not shared_by:
        uow.invites.revoke(target.invite_id, now)
    return shared_by

"""Membership: who is in a room and as what. Join, leave, roles, removal and letting back in.

Every change is one transaction under the room's lock (two owners stepping down at once must not leave a
room without one) and is told to the room after it commits."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from chatapp.domain.access import require_member, require_moderator, room_access, target_participant
from chatapp.domain.errors import AlreadyExists, Conflict, Forbidden, ValidationError
from chatapp.domain.events import Event, ParticipantRemoved, ParticipantsChanged, room_topic
from chatapp.domain.models import Actor, Participant, ParticipantKind, ParticipantState, Role
from chatapp.domain.ports import Clock, PubSub, Transactor, UnitOfWork, utc_now


@dataclass(frozen=True, slots=True)
class Removal:
    """What removing someone did: their name, and how many others came in by the invite link they
    came in by when it was kept for them (0: it was revoked, or they came in another way)."""

    name: str
    link_kept_for: int


# The people list: owners, moderators, the AI, members, guests; by name within each.
_PLACE = {Role.OWNER: 0, Role.MODERATOR: 1, Role.MEMBER: 3, Role.GUEST: 4}
_AI_PLACE = 2


def place_in_people_list(participant: Participant) -> tuple[int, str, int]:
    """Where a participant goes in the people list: by role (the AI after the moderators), then by name."""
    place = _AI_PLACE if participant.kind is ParticipantKind.AI else _PLACE.get(participant.role, 9)
    return place, participant.display_name.lower(), participant.id


def enter_room(
    uow: UnitOfWork, actor: Actor, room_id: int, role: Role, now: datetime, *, invite_id: int | None = None
) -> Participant:
    """Make the actor a participant of the room (a new one, or the one who left coming back, who comes
    back now and by this link). Someone removed from the room cannot come back this way."""
    earlier = uow.participants.membership(room_id, actor)
    if earlier is not None:
        if earlier.state is ParticipantState.REMOVED:
            raise Forbidden("You were removed from this room.")
        if earlier.state is ParticipantState.ACTIVE:
            return earlier
        back = replace(earlier, state=ParticipantState.ACTIVE, joined_at=now, invite_id=invite_id)
        return uow.participants.save(back)
    try:
        return uow.participants.add(
            room_id=room_id,
            kind=ParticipantKind.GUEST if actor.is_guest else ParticipantKind.USER,
            user_id=actor.user_id,
            guest_id=actor.guest_id,
            display_name=actor.display_name,
            role=Role.GUEST if actor.is_guest else role,
            now=now,
            invite_id=invite_id,
        )
    except AlreadyExists as exc:  # the same person joining twice at once
        raise Conflict("Already in this room.") from exc


def become_user(uow: UnitOfWork, guest_id: int, user_id: int) -> list[int]:
    """A guest signed up: their participants become the new account's. They stay guests except in rooms
    whose owners chose that guests who sign up become members. Returns the ids of their rooms."""
    room_ids = []
    for was in uow.participants.of_guest(guest_id):
        room = uow.rooms.get(was.room_id)
        promoted = was.role is Role.GUEST and room is not None and room.signed_up_guests_become_members
        as_user = replace(was, kind=ParticipantKind.USER, user_id=user_id, guest_id=None)
        uow.participants.save(replace(as_user, role=Role.MEMBER) if promoted else as_user)
        room_ids.append(was.room_id)
    return room_ids


def _step_down(participant: Participant) -> Participant:
    """Whoever leaves or is let back in gives up being an owner or moderator."""
    return replace(participant, role=Role.MEMBER) if participant.can_moderate else participant


class Membership:
    """The membership context."""

    def __init__(self, *, tx: Transactor, pubsub: PubSub, clock: Clock = utc_now) -> None:
        self._tx = tx
        self._pubsub = pubsub
        self._clock = clock

    async def _tell(self, room_id: int, *events: Event) -> None:
        for event in events:
            await self._pubsub.publish(room_topic(room_id), event)

    async def join(self, actor: Actor, room_id: int) -> Participant:
        """Join a public room as a member (idempotent); someone removed from it cannot."""

        def work(uow: UnitOfWork) -> tuple[Participant, bool]:
            access = room_access(uow, actor, room_id)
            if access.me is not None:
                return access.me, False
            return enter_room(uow, actor, room_id, Role.MEMBER, self._clock()), True

        try:
            participant, created = await self._tx.run(work, write=True)
        except Conflict:  # a concurrent join of the same user won: theirs is ours
            return await self._tx.run(lambda uow: require_member(uow, actor, room_id).member)
        if created:
            await self._tell(room_id, ParticipantsChanged(room_id=room_id))
        return participant

    async def list_participants(self, actor: Actor, room_id: int) -> list[Participant]:
        """Everyone in a room the actor can see, in the people list's order."""

        def work(uow: UnitOfWork) -> list[Participant]:
            room_access(uow, actor, room_id)
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
            uow.rooms.lock(room_id)
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

        def work(uow: UnitOfWork) -> Removal:
            uow.rooms.lock(room_id)
            me = require_moderator(uow, actor, room_id).member
            # leaving does not dodge removal
            target = target_participant(
                uow, room_id, participant_id, states=(ParticipantState.ACTIVE, ParticipantState.LEFT)
            )
            _may_remove(uow, me, target)
            uow.participants.save(replace(target, state=ParticipantState.REMOVED, removed_by=me.id))
            return Removal(name=target.display_name, link_kept_for=_revoke_their_links(uow, target, self._clock()))

        removal = await self._tx.run(work, write=True)
        removed = ParticipantRemoved(room_id=room_id, participant_id=participant_id)
        await self._tell(room_id, removed, ParticipantsChanged(room_id=room_id))
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
            uow.rooms.lock(room_id)
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
            back = replace(_step_down(target), state=ParticipantState.ACTIVE, removed_by=None, joined_at=now)
            return uow.participants.save(replace(back, invite_id=None))  # not by a link: the one they had is gone

        back = await self._tx.run(work, write=True)
        await self._tell(room_id, ParticipantsChanged(room_id=room_id))
        return back

    async def leave(self, actor: Actor, room_id: int) -> None:
        """Leave the room (a public room can be joined again, as a member: whoever leaves gives up their
        role); the last owner must hand over first."""

        def work(uow: UnitOfWork) -> Participant:
            uow.rooms.lock(room_id)
            me = require_member(uow, actor, room_id).member
            if me.role is Role.OWNER and uow.participants.count_owners(room_id) <= 1:
                raise Conflict(
                    "You are the room's only owner: make someone else an owner before you leave, "
                    "or delete the room in its Settings."
                )
            return uow.participants.save(replace(_step_down(me), state=ParticipantState.LEFT))

        left = await self._tx.run(work, write=True)
        gone = ParticipantRemoved(room_id=room_id, participant_id=left.id, left=True)
        await self._tell(room_id, gone, ParticipantsChanged(room_id=room_id))


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

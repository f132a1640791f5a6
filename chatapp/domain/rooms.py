"""Rooms and participants: create, list, see, join."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from chatapp.domain.errors import AlreadyExists, Conflict, Forbidden, NotFound, ValidationError, not_a_member
from chatapp.domain.events import (
    ParticipantRemoved,
    ParticipantsChanged,
    RoomDeleted,
    room_topic,
)
from chatapp.domain.models import (
    Actor,
    Lobby,
    Participant,
    ParticipantKind,
    ParticipantState,
    Role,
    Room,
    RoomAccess,
    Visibility,
)
from chatapp.domain.ports import Clock, PubSub, Transactor, UnitOfWork, utc_now
from chatapp.domain.validation import clean_text, has_visible_character, hidden_character_error, one_line

PUBLIC_ROOMS_IN_LOBBY = 100
MAX_ID = 2**31 - 1


@dataclass(frozen=True)
class RoomLimits:
    max_name_chars: int = 80
    max_topic_chars: int = 300


def is_valid_id(value: object) -> bool:
    """True for an int that can be a row id (positive, fits a 32-bit column on PostgreSQL)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID


def room_access(uow: UnitOfWork, actor: Actor, room_id: int) -> RoomAccess:
    """What the actor may do in the room. Rooms they may not see raise NotFound, like no room: private
    rooms they are not in, and for guests every room they are not in."""
    found = uow.rooms.with_participant(room_id, actor) if is_valid_id(room_id) else None
    if found is None:
        raise NotFound("Room not found.")
    room, me = found
    if me is None and (room.is_private or actor.is_guest):
        raise NotFound("Room not found.")
    return RoomAccess(room=room, me=me)


def require_member(uow: UnitOfWork, actor: Actor, room_id: int) -> RoomAccess:
    """room_access for operations that need the actor in the room (Forbidden when they only view it)."""
    access = room_access(uow, actor, room_id)
    if access.me is None:
        raise not_a_member()
    return access


def require_moderator(uow: UnitOfWork, actor: Actor, room_id: int) -> RoomAccess:
    """room_access for owners and moderators only."""
    access = require_member(uow, actor, room_id)
    if not access.can_moderate:
        raise Forbidden("Only the room's owners and moderators can do that.")
    return access


def require_owner(uow: UnitOfWork, actor: Actor, room_id: int) -> RoomAccess:
    """room_access for the room's owners only."""
    access = require_member(uow, actor, room_id)
    if not access.is_owner:
        raise Forbidden("Only the room's owner can do that.")
    return access


_IN_ROOM = (ParticipantState.ACTIVE,)


def _target(
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


def enter_room(
    uow: UnitOfWork, actor: Actor, room_id: int, role: Role, now, *, invite_id: int | None = None
) -> Participant:
    """Make the actor a participant of the room (a new one, or the one who left coming back).
    Someone removed from the room cannot come back this way."""
    earlier = uow.participants.membership(room_id, actor)
    if earlier is not None:
        if earlier.state is ParticipantState.REMOVED:
            raise Forbidden("You were removed from this room.")
        if earlier.state is ParticipantState.ACTIVE:
            return earlier
        return uow.participants.set_state(earlier.id, ParticipantState.ACTIVE, now=now, invite_id=invite_id)
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


@dataclass(frozen=True, slots=True)
class Removal:
    """What removing someone did: their name, and how many others came in by the invite link they
    came in by when it was kept for them (0: it was revoked, or they came in another way)."""

    name: str
    link_kept_for: int


# Every room has its AI participant: this module is the invariant's one owner. A room gets it when it
# is created; rooms from before (and a changed CHATAPP_AI_NAME) are brought in line at start-up.


def add_ai_participant(uow: UnitOfWork, room_id: int, ai_name: str, now: datetime) -> Participant:
    """Put the AI in a new room, as a member."""
    return uow.participants.add(
        room_id=room_id, kind=ParticipantKind.AI, display_name=ai_name, role=Role.MEMBER, now=now
    )


def give_every_room_its_ai(uow: UnitOfWork, ai_name: str, now: datetime) -> int:
    """At start-up: every room without its AI gets one and every AI takes the configured name; how many
    rooms got one (nothing is written when nothing is missing)."""
    return uow.participants.sync_ai(display_name=ai_name, now=now)


def ai_participant(uow: UnitOfWork, room_id: int) -> Participant:
    """The room's AI participant (every room has one)."""
    ai = uow.participants.ai_of(room_id)
    if ai is None:
        raise LookupError(f"room {room_id} has no AI participant: give_every_room_its_ai was not run")
    return ai


# The people list: owners, moderators, the AI, members, guests; by name within each.
_PLACE = {Role.OWNER: 0, Role.MODERATOR: 1, Role.MEMBER: 3, Role.GUEST: 4}
_AI_PLACE = 2


def place_in_people_list(participant: Participant) -> tuple[int, str, int]:
    """Where a participant goes in the people list: by role (the AI after the moderators), then by name."""
    place = _AI_PLACE if participant.kind is ParticipantKind.AI else _PLACE.get(participant.role, 9)
    return place, participant.display_name.lower(), participant.id


class Rooms:
    """The rooms context."""

    def __init__(
        self,
        *,
        tx: Transactor,
        pubsub: PubSub,
        limits: RoomLimits,
        ai_name: str = "Assistant",
        clock: Clock = utc_now,
        on_deleted: Callable[[int], None] | None = None,
    ) -> None:
        self._on_deleted = on_deleted  # e.g. the AI dropping a reply it was writing there
        self._tx = tx
        self._ai_name = ai_name
        self._pubsub = pubsub
        self._limits = limits
        self._clock = clock

    @property
    def limits(self) -> RoomLimits:
        """How long names and topics may be (forms show it)."""
        return self._limits

    async def create_room(self, actor: Actor, *, name: str, topic: str = "", private: bool = False) -> Room:
        """Create a room with the actor as its owner and the AI participant in it (not for guests)."""
        if actor.is_guest:
            raise Forbidden("Guests cannot create rooms. Create an account to start your own.")
        details = validate_room_details(self._limits, name=name, topic=topic)
        name, topic = details["name"], details["topic"]
        visibility = Visibility.PRIVATE if private else Visibility.PUBLIC

        def work(uow: UnitOfWork) -> Room:
            now = self._clock()
            room = uow.rooms.add(name=name, topic=topic, visibility=visibility, now=now)
            uow.participants.add(
                room_id=room.id,
                kind=ParticipantKind.USER,
                user_id=actor.user_id,
                display_name=actor.display_name,
                role=Role.OWNER,
                now=now,
            )
            add_ai_participant(uow, room.id, self._ai_name, now)
            return room

        return await self._tx.run(work, write=True)

    async def lobby(self, actor: Actor) -> Lobby:
        """My rooms (newest activity first, with the last message) and public rooms I could join
        (none for guests: they see only the rooms they were invited to)."""

        def work(uow: UnitOfWork) -> Lobby:
            public = [] if actor.is_guest else uow.rooms.public_not_joined(actor, PUBLIC_ROOMS_IN_LOBBY)
            return Lobby(my_rooms=uow.rooms.summaries_for(actor), public_rooms=public)

        return await self._tx.run(work)

    async def access(self, actor: Actor, room_id: int) -> RoomAccess:
        """The room and the actor's participant in it; NotFound if they may not see it."""
        return await self._tx.run(lambda uow: room_access(uow, actor, room_id))

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
            access = await self.access(actor, room_id)
            assert access.me is not None
            return access.me
        if created:
            await self._pubsub.publish(room_topic(room_id), ParticipantsChanged(room_id=room_id))
        return participant

    async def participants(self, actor: Actor, room_id: int) -> list[Participant]:
        """Everyone in a room the actor can see, owners first."""

        def work(uow: UnitOfWork) -> list[Participant]:
            room_access(uow, actor, room_id)
            return sorted(uow.participants.list(room_id), key=place_in_people_list)

        return await self._tx.run(work)

    async def set_role(self, actor: Actor, room_id: int, participant_id: int, role: str) -> Participant:
        """The owner makes someone an owner, moderator or member; a moderator may make a member of a
        guest who has since created an account (guests without one stay guests; the AI has no role
        to change). An owner may step down only while another owner remains."""
        try:
            wanted = Role(role)
        except ValueError:
            raise ValidationError({"role": "Choose owner, moderator or member."}) from None

        def work(uow: UnitOfWork) -> Participant:
            uow.rooms.lock(room_id)  # two owners stepping down at once must not leave the room without one
            me = require_moderator(uow, actor, room_id).member
            target = _target(uow, room_id, participant_id)
            if me.role is not Role.OWNER and not (target.role is Role.GUEST and wanted is Role.MEMBER):
                raise Forbidden("Only the room's owner can do that.")
            if target.kind is not ParticipantKind.USER or wanted is Role.GUEST:
                raise Forbidden("Only people with an account can be given a role.")
            if target.role is Role.OWNER and wanted is not Role.OWNER and uow.participants.count_owners(room_id) <= 1:
                raise Conflict("A room needs an owner: make someone else an owner first.")
            return uow.participants.set_role(target.id, wanted)

        changed = await self._tx.run(work, write=True)
        await self._pubsub.publish(room_topic(room_id), ParticipantsChanged(room_id=room_id))
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
            target = _target(uow, room_id, participant_id, states=(ParticipantState.ACTIVE, ParticipantState.LEFT))
            if target.id == me.id:
                raise Forbidden("To leave the room, use Leave room.")
            if target.kind is ParticipantKind.AI:
                raise Forbidden("The AI cannot be removed; the owner can switch it off in the room's settings.")
            if target.can_moderate and me.role is not Role.OWNER:
                raise Forbidden("Only an owner can remove an owner or a moderator.")
            if target.role is Role.OWNER and uow.participants.count_owners(room_id) <= 1:
                raise Conflict("The last owner cannot be removed.")
            uow.participants.set_state(target.id, ParticipantState.REMOVED, removed_by=me.id)
            now = self._clock()
            uow.invites.revoke_by(target.id, now)  # their links stop working too...
            shared_by = 0
            if target.invite_id is not None:  # ...and the one they came in by (else: back as a new guest)
                shared_by = uow.participants.count_by_invite(target.invite_id, excluding=target.id)
                if not shared_by:
                    uow.invites.revoke(target.invite_id, now)
            return Removal(name=target.display_name, link_kept_for=shared_by)

        removal = await self._tx.run(work, write=True)
        await self._pubsub.publish(
            room_topic(room_id), ParticipantRemoved(room_id=room_id, participant_id=participant_id)
        )
        await self._pubsub.publish(room_topic(room_id), ParticipantsChanged(room_id=room_id))
        return removal

    async def removed_participants(self, actor: Actor, room_id: int) -> list[Participant]:
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
            target = _target(
                uow,
                room_id,
                participant_id,
                states=(ParticipantState.REMOVED,),
                missing="That person was not removed from this room.",
            )
            if me.role is not Role.OWNER:
                remover = uow.participants.get(target.removed_by) if target.removed_by else None
                if target.can_moderate or (remover is not None and remover.role is Role.OWNER):
                    raise Forbidden(
                        "Only an owner can let back in a former owner or moderator, or someone an owner removed."
                    )
            now = self._clock()
            if target.guest_id is not None and not uow.guests.has_live_session(target.guest_id, now):
                raise Conflict(
                    f"{target.display_name}'s guest pass has ended, so they could not come back this way: "
                    "send them a new invite link instead."
                )
            if target.can_moderate:  # back as a member; a guest (with an account or not) as a guest
                uow.participants.set_role(target.id, Role.MEMBER)
            return uow.participants.set_state(target.id, ParticipantState.ACTIVE, now=now)

        back = await self._tx.run(work, write=True)
        await self._pubsub.publish(room_topic(room_id), ParticipantsChanged(room_id=room_id))
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
            if me.role in (Role.OWNER, Role.MODERATOR):
                uow.participants.set_role(me.id, Role.MEMBER)
            return uow.participants.set_state(me.id, ParticipantState.LEFT)

        left = await self._tx.run(work, write=True)
        gone = ParticipantRemoved(room_id=room_id, participant_id=left.id, left=True)
        await self._pubsub.publish(room_topic(room_id), gone)
        await self._pubsub.publish(room_topic(room_id), ParticipantsChanged(room_id=room_id))

    async def delete_room(self, actor: Actor, room_id: int, *, confirm_name: str) -> None:
        """The owner deletes the room for good, with its messages, people and links; `confirm_name`
        must be the room's name (typed, so that a slip cannot do it). Every open tab of it leaves."""

        def work(uow: UnitOfWork) -> None:
            uow.rooms.lock(room_id)
            room = require_owner(uow, actor, room_id).room
            if one_line(confirm_name) != room.name:
                raise ValidationError({"confirm_name": "Type the room's name exactly to delete it."})
            uow.rooms.delete(room_id)

        await self._tx.run(work, write=True)
        if self._on_deleted is not None:
            self._on_deleted(room_id)
        await self._pubsub.publish(room_topic(room_id), RoomDeleted(room_id=room_id))


def validate_room_details(limits: RoomLimits, *, name: str | None = None, topic: str | None = None) -> dict[str, str]:
    """The given name and topic cleaned as they are saved, by field ("name", "topic"; one left out or None
    is not in it); a ValidationError names each one that breaks the rules."""
    cleaned: dict[str, str] = {}
    errors: dict[str, str] = {}
    if name is not None:
        typed, name = name, one_line(name)
        cleaned["name"] = name
        if error := hidden_character_error("Room name", typed):
            errors["name"] = error
        elif not name or not has_visible_character(name):
            errors["name"] = "Room name is required." if not name else "Room name needs a visible character."
        elif len(name) > limits.max_name_chars:
            errors["name"] = f"Room name must be at most {limits.max_name_chars} characters."
    if topic is not None:
        cleaned["topic"] = topic = clean_text(topic)
        if len(topic) > limits.max_topic_chars:
            errors["topic"] = f"Topic must be at most {limits.max_topic_chars} characters."
    if errors:
        raise ValidationError(errors)
    return cleaned

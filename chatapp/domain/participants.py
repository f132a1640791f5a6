"""Rules about participants that several contexts share: where one goes in the people list, how
someone comes into a room, a guest who signs up, and what leaving costs a role."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from chatapp.domain.errors import AlreadyExists, Conflict, Forbidden
from chatapp.domain.models import Actor, Participant, ParticipantKind, ParticipantState, Role, User
from chatapp.domain.ports import UnitOfWork

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


def bot_actor(bot: User) -> Actor:
    """The bot as the actor its participants belong to (for finding them)."""
    return Actor(user_id=bot.id, username=bot.username, display_name=bot.display_name, is_bot=True)


def step_down(participant: Participant) -> Participant:
    """Whoever leaves or is let back in gives up being an owner or moderator."""
    return replace(participant, role=Role.MEMBER) if participant.can_moderate else participant

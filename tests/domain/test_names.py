"""Names that could pass for someone else's: hidden characters are refused in every name, and a guest
cannot join under a name already used in the room (on SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio

import pytest

from chatapp.domain.accounts import SignUpForm
from chatapp.domain.errors import ValidationError
from chatapp.domain.invites import GUEST_NAME_IN_USE, NAME_IN_USE, InviteInvalid, InvitePolicy, Invites
from chatapp.domain.room_settings import RoomSettingsChanges
from chatapp.domain.validation import hidden_character_error, hidden_characters, name_in_use, room_name_key
from chatapp.store.db import SqlTransactor
from chatapp.store.pubsub import InProcessPubSub
from tests.domain.helpers import PASSWORD, sign_up

# Each hides or reorders text: bidirectional embeddings, overrides and isolates, zero-width space,
# non-joiner and joiner, direction marks, the soft hyphen, the byte-order mark, the word joiner and
# invisible operators, the Arabic letter mark, a tag character, and controls that are not whitespace.
HIDDEN = [
    *"\u202a\u202b\u202c\u202d\u202e",
    *"\u2066\u2067\u2068\u2069",
    *"\u200b\u200c\u200d\u200e\u200f",
    *"\u00ad\ufeff\u2060\u2061\u2062\u2063\u2064\u061c\U000e0041",
    *"\x00\x07\x1b\x7f\x9b",
]


@pytest.mark.parametrize("hidden", HIDDEN, ids=lambda ch: f"U+{ord(ch):04X}")
def test_each_hidden_character_is_named_by_its_code_point(hidden):
    assert hidden_characters(f"Ali{hidden}ce") == [hidden]
    assert hidden_character_error("Display name", f"Ali{hidden}ce") == (
        f"Display name contains an invisible or text-direction character (U+{ord(hidden):04X}); remove it."
    )


def test_names_without_hidden_characters_pass_and_several_are_listed_once():
    for fine in ("Alice", "José Ñúñez", "Zoë 🚀", "محمد", "שלום", "李小龍", "Line\nbreak", "tab\there", "  "):
        assert hidden_character_error("Room name", fine) is None, fine
    assert hidden_character_error("Room name", "\u202eevil\u202e\u200b\u2066\u2067") == (
        "Room name contains invisible or text-direction characters (U+202E, U+200B, U+2066…); remove them."
    )


def test_room_names_compare_case_blind_compatibility_normalised_and_without_look_alikes():
    same = ["alice", "ALICE", "\uff21lice", "\u0410lice", "Alice\u3164", "A\u2800lice", "ALICE\u034f"]
    assert {room_name_key(name) for name in same} == {"alice"}
    assert name_in_use("alice", ["Bob", "Alice"])
    assert not name_in_use("Alicé", ["Alice"]) and not name_in_use("Alice B.", ["Alice"])
    assert not name_in_use("Alice", [])


async def test_hidden_characters_are_refused_in_every_name_with_the_field_named(runtime):
    services = runtime.services
    accounts, rooms = services.accounts, services.rooms
    expected = "contains an invisible or text-direction character (U+202E); remove it."
    with pytest.raises(ValidationError) as refused:
        await accounts.sign_up(SignUpForm("mallory", "Olga\u202e", PASSWORD))
    assert refused.value.fields == {"display_name": f"Display name {expected}"}
    olga, _ = await sign_up(runtime, "olga", "Olga")
    with pytest.raises(ValidationError) as refused:
        await accounts.update_display_name(olga, "\u202eaglO")
    assert refused.value.fields == {"display_name": f"Display name {expected}"}
    with pytest.raises(ValidationError) as refused:
        await rooms.create_room(olga, name="Plans\u202e")
    assert refused.value.fields == {"name": f"Room name {expected}"}
    room = await rooms.create_room(olga, name="Plans")
    with pytest.raises(ValidationError) as refused:
        await services.room_settings.update_room_settings(olga, room.id, RoomSettingsChanges(name="\u202eSnalp"))
    assert refused.value.fields == {"name": f"Room name {expected}"}
    link = await services.invites.create_invite(olga, room.id)
    with pytest.raises(ValidationError) as refused:
        await services.invites.accept_as_guest(link.token, "Gus\u202e")
    assert refused.value.fields == {"display_name": f"Display name {expected}"}
    # Nothing was saved under any of those names; the ones without hidden characters still work.
    assert (await rooms.get_room_access(olga, room.id)).room.name == "Plans"
    assert await accounts.update_display_name(olga, "Olga K.") == "Olga K."
    assert (await services.invites.accept_as_guest(link.token, " Gus\n")).actor.display_name == "Gus"


async def owner_room_and_link(runtime):
    owner, _ = await sign_up(runtime, "olga", "Olga")
    room = await runtime.services.rooms.create_room(owner, name="Plans", private=True)
    return owner, room, await runtime.services.invites.create_invite(owner, room.id)


@pytest.mark.parametrize("name", ["Olga", "olga", " OLGA ", "\uff2flga", "\u041elga", "Olga\u3164"])
async def test_a_guest_cannot_join_under_the_owners_name_in_any_disguise(runtime, name):
    _, room, link = await owner_room_and_link(runtime)
    with pytest.raises(ValidationError) as refused:
        await runtime.services.invites.accept_as_guest(link.token, name)
    assert refused.value.fields == {"display_name": NAME_IN_USE}
    assert NAME_IN_USE == "That name is already used in this room; choose another."
    assert (await runtime.services.invites.accept_as_guest(link.token, "Olga's guest")).room_id == room.id


async def test_a_guest_cannot_take_another_guests_the_ais_or_a_departed_members_name(runtime):
    services = runtime.services
    owner, room, link = await owner_room_and_link(runtime)
    await services.invites.accept_as_guest(link.token, "Gwen")
    bob, _ = await sign_up(runtime, "bob", "Bob")
    await services.invites.accept_as_user(bob, link.token)
    await services.membership.leave(bob, room.id)  # his messages still show his name
    # A policy without reserved names: only the room's own AI participant stands in the way.
    invites = Invites(tx=SqlTransactor(runtime.engine), pubsub=InProcessPubSub(), policy=InvitePolicy())
    for taken in ("gwen", "BOB", runtime.settings.ai_name.lower()):
        with pytest.raises(ValidationError) as refused:
            await invites.accept_as_guest(link.token, taken)
        assert refused.value.fields == {"display_name": NAME_IN_USE}, taken
    names = [p.display_name for p in await services.membership.list_participants(owner, room.id)]
    assert sorted(names) == sorted(["Olga", runtime.settings.ai_name, "Gwen"])


async def test_people_with_accounts_may_share_a_name_but_a_returning_guest_may_not(runtime):
    services = runtime.services
    owner, room, link = await owner_room_and_link(runtime)
    other_olga, _ = await sign_up(runtime, "olga2", "Olga")
    assert await services.invites.accept_as_user(other_olga, link.token) == room.id  # the username tells them apart
    elsewhere = await services.rooms.create_room(owner, name="Elsewhere", private=True)
    elsewhere_link = await services.invites.create_invite(owner, elsewhere.id)
    guest = (await services.invites.accept_as_guest(elsewhere_link.token, "Ivy")).actor
    ivy, _ = await sign_up(runtime, "ivy", "Ivy")
    await services.invites.accept_as_user(ivy, link.token)
    with pytest.raises(ValidationError) as refused:  # the guest Ivy of another room follows the link
        await services.invites.accept_as_guest(link.token, "", guest=guest)
    assert refused.value.fields == {"display_name": GUEST_NAME_IN_USE}
    # Their own room still takes them back under their name.
    assert (await services.invites.accept_as_guest(elsewhere_link.token, "", guest=guest)).room_id == elsewhere.id


async def test_an_invalid_link_is_refused_before_the_name_so_it_tells_nothing_about_the_room(runtime):
    owner, room, link = await owner_room_and_link(runtime)
    await runtime.services.invites.revoke_invite(owner, room.id, link.invite.id)
    with pytest.raises(InviteInvalid):
        await runtime.services.invites.accept_as_guest(link.token, "Olga")


async def test_guests_choosing_one_name_at_once_by_different_links_let_exactly_one_in(runtime):
    services = runtime.services
    owner, room, _ = await owner_room_and_link(runtime)
    links = [await services.invites.create_invite(owner, room.id) for _ in range(4)]
    outcomes = await asyncio.gather(
        *(services.invites.accept_as_guest(links[i % 4].token, "sam" if i % 2 else "Sam") for i in range(8)),
        return_exceptions=True,
    )
    admitted = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(admitted) == 1, outcomes
    assert all(isinstance(e, ValidationError) and e.fields == {"display_name": NAME_IN_USE} for e in refused)
    names = [p.display_name for p in await services.membership.list_participants(owner, room.id)]
    assert len([n for n in names if n.lower() == "sam"]) == 1


async def test_removing_a_links_maker_while_guests_follow_it_does_not_deadlock(runtime):
    """Joins lock the room, then the link; a removal locks the room, then revokes the remover's links."""
    services = runtime.services
    owner, room, _ = await owner_room_and_link(runtime)
    mod, _ = await sign_up(runtime, "moe", "Mo")
    await services.invites.accept_as_user(mod, (await services.invites.create_invite(owner, room.id)).token)
    people = await services.membership.list_participants(owner, room.id)
    mo_id = next(p.id for p in people if p.display_name == "Mo")
    await services.membership.update_role(owner, room.id, mo_id, "moderator")
    link = await services.invites.create_invite(mod, room.id)
    outcomes = await asyncio.gather(
        *(services.invites.accept_as_guest(link.token, f"Guest {i}") for i in range(4)),
        services.membership.remove_participant(owner, room.id, mo_id),
        *(services.invites.accept_as_guest(link.token, f"Late {i}") for i in range(4)),
        return_exceptions=True,
    )
    assert all(not isinstance(o, BaseException) or isinstance(o, InviteInvalid) for o in outcomes), outcomes

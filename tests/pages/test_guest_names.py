"""Through the real pages: a guest cannot join under a name already in the room, hidden characters are
refused with the field named, and guests are marked on their messages and in the people list."""

from __future__ import annotations

import pytest
from nicegui import ui

from chatapp.domain.invites import NAME_IN_USE
from chatapp.pages.message_list import MessageList
from chatapp.pages.people_list import PeopleList
from chatapp.pages.session import GUEST_COOKIE, SESSION_COOKIE
from tests.domain.helpers import PASSWORD
from tests.pages.conftest import signed_up
from tests.pages.test_live_room import open_new_room, send

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

HIDDEN_IN_NAME = "contains an invisible or text-direction character (U+202E); remove it."


async def owner_in_a_room_with_a_link(app):
    runtime, new_user = app
    olga = await signed_up(new_user, "olga", "Olga")
    await open_new_room(olga, "Plans")
    owner = await runtime.services.accounts.authenticate(olga.http_client.cookies.get(SESSION_COOKIE))
    room_id = (await runtime.services.rooms.list_rooms(owner)).my_rooms[0].room.id
    return olga, room_id, await runtime.services.invites.create_invite(owner, room_id)


def name_field(user) -> ui.input:
    with user:
        (field,) = user.find(kind=ui.input, content="Your name").elements
    return field


async def test_the_join_page_refuses_a_name_already_in_the_room_and_keeps_what_was_typed(app):
    _, new_user = app
    _, room_id, link = await owner_in_a_room_with_a_link(app)
    guest = new_user()
    for typed, error in [(" OLGA ", NAME_IN_USE), ("Olga\u202e", f"Display name {HIDDEN_IN_NAME}")]:
        response = await guest.http_client.post(f"/join/{link.token}/accept", data={"display_name": typed})
        assert response.status_code == 303 and f"/join/{link.token}?" in response.headers["location"]
        assert not guest.http_client.cookies.get(GUEST_COOKIE)  # no guest was made
        await guest.open(response.headers["location"])
        await guest.should_see(error)
        field = name_field(guest)
        assert (field.error, field.value) == (error, typed)
    response = await guest.http_client.post(f"/join/{link.token}/accept", data={"display_name": "Olga's friend"})
    assert response.headers["location"] == f"/rooms/{room_id}" and guest.http_client.cookies.get(GUEST_COOKIE)


async def test_a_guests_messages_carry_a_guest_mark_and_the_people_list_says_no_account(app):
    _, new_user = app
    olga, room_id, link = await owner_in_a_room_with_a_link(app)
    guest = new_user()
    await guest.http_client.post(f"/join/{link.token}/accept", data={"display_name": "Gus"})
    await guest.open(f"/rooms/{room_id}")
    await olga.should_see("Gus (Guest, no account)", retries=30)
    await send(olga, "Welcome, Gus")
    await guest.should_see("Welcome, Gus", retries=30)
    await send(guest, "I am the owner now")
    await olga.should_see("Gus (guest): <p>I am the owner now</p>", retries=30)
    with olga:
        (messages,) = olga.find(MessageList).elements
        (people,) = olga.find(PeopleList).elements
    assert [(p["author"], p["kind"]) for p in messages.payloads] == [("Olga", "user"), ("Gus", "guest")]
    await olga.should_see("Olga: <p>Welcome, Gus</p>")  # people with accounts carry no mark
    assert {p["name"]: p["role"] for p in people.props["people"]}["Olga"] == "Owner"


async def test_sign_up_and_a_new_rooms_name_refuse_hidden_characters_with_the_field_named(app):
    _, new_user = app
    visitor = new_user()
    response = await visitor.http_client.post(
        "/auth/sign-up", data={"username": "mallory", "display_name": "Olga\u202e", "password": PASSWORD}
    )
    await visitor.open(response.headers["location"])
    await visitor.should_see(f"Display name {HIDDEN_IN_NAME}")
    olga = await signed_up(new_user, "olga", "Olga")
    await olga.open("/")
    olga.find("Room name").type("Plans\u202e")
    olga.find("Create room").click()
    await olga.should_see(f"Room name {HIDDEN_IN_NAME}")

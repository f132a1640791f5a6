"""Moderation and limits through simulated users: deletes vanish live, a removed member's tab leaves,
roles change from the people list, and rate limits answer with when to try again."""

from __future__ import annotations

import pytest
from nicegui import ui

from chatapp.domain.accounts import SignUpForm
from chatapp.domain.room_settings import RoomSettingsChanges
from chatapp.pages.message_list import MessageList
from chatapp.pages.people_list import PeopleList
from tests.domain.helpers import PASSWORD
from tests.pages.conftest import signed_up
from tests.pages.test_live_room import bodies, composer_of, open_new_room, send

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def owner_and_member(new_user):
    alice = await signed_up(new_user, "alice", "Alice")
    bob = await signed_up(new_user, "bob", "Bob")
    await open_new_room(alice, "Launch")
    await bob.open("/")
    bob.find("Join").click()
    await bob.should_see("People (3)")
    return alice, bob


def element(user, kind):
    with user:
        (found,) = user.find(kind).elements
    return found


def participant_id(user, name: str) -> int:
    return next(p["id"] for p in element(user, PeopleList).props["people"] if p["name"] == name)


async def test_a_deleted_message_vanishes_from_every_screen(app):
    _, new_user = app
    alice, bob = await owner_and_member(new_user)
    await send(bob, "oops, wrong room")
    await alice.should_see("oops, wrong room")
    (payload,) = [p for p in element(alice, MessageList).payloads if "oops" in p["html"]]
    alice.find(MessageList).trigger("deleteMessage", payload["id"])  # the owner deletes it
    await bob.should_not_see("oops, wrong room")
    await alice.should_not_see("oops, wrong room")
    await send(bob, "second try")
    await alice.should_see("second try")
    (mine,) = [p for p in element(bob, MessageList).payloads if "second try" in p["html"]]
    bob.find(MessageList).trigger("deleteMessage", mine["id"])  # its author may delete it too
    await alice.should_not_see("second try")


async def test_a_member_cannot_delete_others_messages_or_remove_people(app):
    _, new_user = app
    alice, bob = await owner_and_member(new_user)
    await send(alice, "owner's words")
    await bob.should_see("owner's words")
    (payload,) = [p for p in element(bob, MessageList).payloads if "owner" in p["html"]]
    bob.find(MessageList).trigger("deleteMessage", payload["id"])
    await bob.should_see("Only its author, or the room's owners and moderators, can delete a message.")
    bob.find(PeopleList).trigger("remove", participant_id(bob, "Alice"))
    await bob.should_see("Only the room's owners and moderators can do that.")
    assert "owner's words" in " ".join(bodies(alice))


async def test_a_removed_member_leaves_the_room_at_once_and_cannot_post(app):
    _, new_user = app
    alice, bob = await owner_and_member(new_user)
    alice.find(PeopleList).trigger("remove", participant_id(alice, "Bob"))
    await alice.should_see("People (2)")
    await alice.should_see("Bob was removed.")
    await bob.should_see("You were removed from that room.")


async def test_the_owner_lets_someone_removed_back_in_from_the_people_list(app):
    _, new_user = app
    alice, bob = await owner_and_member(new_user)
    bob_pid = participant_id(alice, "Bob")
    alice.find(PeopleList).trigger("remove", bob_pid)
    await bob.should_see("You were removed from that room.")
    await alice.should_see("People (2)")
    alice.find(PeopleList).trigger("showRemoved")
    await alice.should_see("Removed (1)")
    await alice.should_see("Bob (removed)")
    alice.find(PeopleList).trigger("readmit", bob_pid)
    await alice.should_see("Bob is back in the room.")
    await alice.should_see("People (3)")
    await alice.should_see("Removed (0)")
    await bob.open("/")
    await bob.should_see("Launch")  # among his rooms again
    with bob:
        (room_link,) = [link for link in bob.find(ui.link).elements if link.props["href"].startswith("/rooms/")]
    await bob.open(room_link.props["href"])
    await bob.should_see("People (3)")
    await send(bob, "thanks for letting me back")
    await alice.should_see("thanks for letting me back")


async def test_a_members_tab_offers_invite_links_as_soon_as_the_owner_allows_it(app):
    runtime, new_user = app
    alice, bob = await owner_and_member(new_user)
    await bob.should_not_see("Invite")
    owner = await runtime.services.accounts.authenticate(alice.http_client.cookies["chatapp_session"])
    room_id = element(bob, MessageList).props["room"]
    await runtime.services.room_settings.update_room_settings(
        owner, room_id, RoomSettingsChanges(members_can_invite=True, guests_can_use_ai=True)
    )
    await bob.should_see("Invite")
    await runtime.services.room_settings.update_room_settings(
        owner, room_id, RoomSettingsChanges(members_can_invite=False, guests_can_use_ai=True)
    )
    await bob.should_not_see("Invite")


async def test_a_member_sees_no_removed_people(app):
    _, new_user = app
    _, bob = await owner_and_member(new_user)
    bob.find(PeopleList).trigger("showRemoved")  # the browser offers it only to owners and moderators
    await bob.should_see("Only the room's owners and moderators can do that.")
    await bob.should_not_see("Removed (")


async def test_the_owner_makes_a_member_moderator_from_the_people_list(app):
    _, new_user = app
    alice, bob = await owner_and_member(new_user)
    await bob.should_not_see("Invite")
    alice.find(PeopleList).trigger("setRole", {"id": participant_id(alice, "Bob"), "role": "moderator"})
    await bob.should_see("Bob (Moderator)")
    assert element(bob, PeopleList).props["my-role"] == "moderator"
    await bob.should_see("Invite")  # the open tab follows the new role
    await bob.should_not_see("Settings")
    alice.find(PeopleList).trigger("setRole", {"id": participant_id(alice, "Bob"), "role": "owner"})
    await bob.should_see("Settings")
    bob.find(PeopleList).trigger("setRole", {"id": participant_id(bob, "Alice"), "role": "member"})
    await alice.should_not_see("Settings")
    await alice.should_not_see("Invite")


@pytest.mark.settings(message_burst=3, message_per_second=0.5)
async def test_posting_too_fast_keeps_the_message_in_the_outbox_with_when_it_is_sent_again(app):
    _, new_user = app
    alice, _ = await owner_and_member(new_user)
    for text in ("one", "two", "three", "four"):
        await send(alice, text)
    too_fast = "You are sending messages too fast. Try again in 2 seconds."
    await alice.should_see(f"Not sent, retrying: {too_fast}")
    assert list(composer_of(alice).unconfirmed.values()) == ["four"]  # kept by the browser, not lost
    assert composer_of(alice).returned_draft == ""
    assert [b for b in bodies(alice) if b in ("<p>one</p>", "<p>two</p>", "<p>three</p>", "<p>four</p>")] == [
        "<p>one</p>",
        "<p>two</p>",
        "<p>three</p>",
    ]


@pytest.mark.settings(sign_in_limit=3)
async def test_too_many_sign_in_attempts_are_refused_with_when_to_try_again(app):
    _, new_user = app
    await signed_up(new_user, "alice", "Alice")
    visitor = new_user()
    for _ in range(3):
        response = await visitor.http_client.post("/auth/sign-in", data={"username": "alice", "password": "nope"})
        assert "sign-in" in response.headers["location"]
    response = await visitor.http_client.post("/auth/sign-in", data={"username": "alice", "password": PASSWORD})
    page = await visitor.http_client.get(response.headers["location"])
    assert "Too many failed sign-in attempts. Try again in 5 minutes." in page.text


async def test_a_moderator_makes_a_guest_who_signed_up_a_member_from_the_people_list(app):
    runtime, new_user = app
    services = runtime.services
    alice, bob = await owner_and_member(new_user)
    owner = await services.accounts.authenticate(alice.http_client.cookies.get("chatapp_session"))
    room_id = (await services.rooms.list_rooms(owner)).my_rooms[0].room.id
    await services.membership.update_role(owner, room_id, participant_id(alice, "Bob"), "moderator")
    link = await services.invites.create_invite(owner, room_id)
    gwen = (await services.invites.accept_as_guest(link.token, "Gwen")).actor
    await services.accounts.sign_up_guest(gwen, SignUpForm("gwen", "Gwen", PASSWORD))
    await bob.should_see("Gwen (Guest)")  # an account, but still a guest here
    bob.find(PeopleList).trigger("setRole", {"id": participant_id(bob, "Gwen"), "role": "member"})
    await alice.should_see("Gwen (Member)")
    await bob.should_see("Gwen is now a member.")
    bob.find(PeopleList).trigger("setRole", {"id": participant_id(bob, "Gwen"), "role": "moderator"})
    await bob.should_see("Only the room's owner can do that.")
    await alice.should_see("Gwen (Member)")

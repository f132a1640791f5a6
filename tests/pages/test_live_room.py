"""Two simulated users in one room see each other live; a third in another room sees nothing."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from chatapp.pages.composer import Composer
from chatapp.pages.message_list import MessageList
from tests.pages.conftest import signed_up
from tests.timing import eventually

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def bodies(user) -> list[str]:
    with user:
        (element,) = user.find(MessageList).elements
    return [p["html"] for p in element.payloads]


async def open_new_room(user, name: str) -> None:
    """Create a room from the lobby form and wait until its page is open."""
    await user.open("/")
    user.find("Room name").type(name)
    user.find("Create room").click()
    await user.should_see("People (2)")


async def send(user, text: str, cid: str | None = None) -> str:
    """What Enter or Send does: the browser's composer sends its text with the id it gave the message
    (a resend carries the same id); returns the id."""
    cid = cid or uuid.uuid4().hex
    user.find(Composer).trigger("send", {"cid": cid, "text": text})
    return cid


def composer_of(user) -> Composer:
    with user:
        (composer,) = user.find(Composer).elements
    return composer


async def test_two_users_chat_live_and_a_third_room_stays_quiet(app):
    _, new_user = app
    alice = await signed_up(new_user, "alice", "Alice")
    bob = await signed_up(new_user, "bob", "Bob")
    carol = await signed_up(new_user, "carol", "Carol")

    await alice.open("/")
    await alice.should_see("Create a room")
    alice.find("Room name").type("General")
    alice.find("Create room").click()
    await alice.should_see("People (2)")

    await carol.open("/")
    carol.find("Room name").type("Elsewhere")
    carol.find("Private").click()
    carol.find("Create room").click()
    await carol.should_see("People (2)")

    await bob.open("/")
    await bob.should_see("General")
    bob.find("Join").click()
    await bob.should_see("People (3)")
    await alice.should_see("People (3)")

    await send(alice, "Hello **Bob**")
    await bob.should_see("<strong>Bob</strong>")
    await alice.should_see("<strong>Bob</strong>")
    await send(bob, "Hi Alice")
    await alice.should_see("Hi Alice")

    assert bodies(carol) == []
    assert [b for b in bodies(bob)] == ["<p>Hello <strong>Bob</strong></p>", "<p>Hi Alice</p>"]


async def test_invalid_message_shows_error_and_keeps_draft(app):
    runtime, new_user = app
    alice = await signed_up(new_user, "alice", "Alice")
    await open_new_room(alice, "General")
    too_long = "x" * (runtime.settings.max_message_chars + 1)
    await send(alice, too_long)
    await alice.should_see("Message is too long")
    assert composer_of(alice).returned_draft == too_long  # the browser keeps the text
    assert bodies(alice) == []


async def test_private_room_page_answers_404_to_outsiders(app):
    runtime, new_user = app
    alice = await signed_up(new_user, "alice", "Alice")
    mallory = await signed_up(new_user, "mallory", "Mallory")
    actor = await runtime.services.accounts.authenticate(alice.http_client.cookies["chatapp_session"])
    secret = await runtime.services.rooms.create_room(actor, name="Secret plans", private=True)
    await runtime.services.chat.post_message(actor, secret.id, "the password is swordfish")
    for path in (f"/rooms/{secret.id}", "/rooms/999999", "/rooms/not-a-number"):
        response = await mallory.http_client.get(path)
        assert response.status_code == 404, path
        assert "Secret plans" not in response.text and "swordfish" not in response.text
    response = await alice.http_client.get(f"/rooms/{secret.id}")
    assert response.status_code == 200 and "swordfish" in response.text


async def test_signed_out_visitor_is_sent_to_sign_in(app):
    _, new_user = app
    visitor = new_user()
    response = await visitor.http_client.get("/rooms/1")
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in?next=/rooms/1"


async def test_sign_out_sends_open_tabs_to_sign_in(app):
    runtime, new_user = app
    alice = await signed_up(new_user, "alice", "Alice")
    await open_new_room(alice, "General")
    token = alice.http_client.cookies["chatapp_session"]
    other_browser = await signed_up(new_user, "alice2", "Alice 2")  # a second account stays signed in
    await other_browser.open("/")
    assert alice.client is not None
    await runtime.services.accounts.sign_out(token)
    await alice.should_see("Sign in")
    await other_browser.should_see("Create a room")


async def test_a_message_that_cannot_be_saved_stays_in_the_outbox_and_its_resend_is_saved_once(app):
    runtime, new_user = app
    alice = await signed_up(new_user, "alice", "Alice")
    await open_new_room(alice, "General")
    with runtime.engine.begin() as conn:  # the database really refuses the insert
        conn.exec_driver_sql("ALTER TABLE messages RENAME TO messages_away")
    cid = await send(alice, "precious words")
    await alice.should_see("Not sent, retrying: Your message could not be saved yet.")
    assert composer_of(alice).unconfirmed == {cid: "precious words"}  # the browser keeps it and resends
    assert composer_of(alice).returned_draft == ""
    assert bodies(alice) == []
    with runtime.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE messages_away RENAME TO messages")
    for _ in range(2):  # the browser's timer resends, then a reconnect sends it once more
        await send(alice, "precious words", cid)
    await eventually(lambda: bodies(alice) and not composer_of(alice).unconfirmed)
    assert bodies(alice) == ["<p>precious words</p>"]
    assert composer_of(alice).unconfirmed == {} and composer_of(alice).error == ""
    await alice.should_not_see("Not sent, retrying")


async def test_a_failing_page_shows_no_internals(app):
    runtime, new_user = app
    alice = await signed_up(new_user, "alice", "Alice")
    with runtime.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE rooms RENAME TO rooms_away")
    response = await alice.http_client.get("/")
    assert response.status_code == 500
    assert "Something went wrong" in response.text
    for leak in ("SELECT", "rooms_away", "OperationalError", "sqlite3", "Traceback (most recent"):
        assert leak not in response.text
    with runtime.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE rooms_away RENAME TO rooms")
    assert (await alice.http_client.get("/")).status_code == 200


async def test_messages_sent_in_quick_succession_all_arrive_in_order(app):
    _, new_user = app
    alice = await signed_up(new_user, "alice", "Alice")
    await open_new_room(alice, "General")
    for i in range(5):  # the next message is typed before the previous send's handler has run
        await send(alice, f"quick {i}")
    await eventually(lambda: len(bodies(alice)) == 5)
    assert bodies(alice) == [f"<p>quick {i}</p>" for i in range(5)]


async def test_first_render_holds_each_message_once(app):
    """A message committed while a page is built is both in its history and in the feed's buffer."""
    _, new_user = app
    alice = await signed_up(new_user, "alice", "Alice")
    await open_new_room(alice, "General")
    first = {"id": 7, "author": "Alice", "kind": "user", "ts": "2026-11-26T12:00:00+00:00", "html": "<p>a</p>"}
    second = {**first, "id": 8, "html": "<p>b</p>"}

    async def nothing(_: int) -> None:
        return None

    with alice:
        listing = MessageList(1, [first, second, second], has_older=False, on_load_older=nothing, on_catch_up=nothing)
    assert [p["id"] for p in listing.props["messages"]] == [7, 8]


async def test_a_revoked_tab_stops_receiving_whatever_its_browser_does(app):
    runtime, new_user = app
    alice = await signed_up(new_user, "alice", "Alice")
    bob = await signed_up(new_user, "bob", "Bob")
    await open_new_room(alice, "General")
    await bob.open("/")
    bob.find("Join").click()
    await bob.should_see("People (3)")
    with alice:
        (old_list,) = alice.find(MessageList).elements
    await send(bob, "before")
    await alice.should_see("before")
    await runtime.services.accounts.sign_out(alice.http_client.cookies["chatapp_session"])
    await alice.should_see("Sign in")
    await send(bob, "after the sign-out")
    await bob.should_see("after the sign-out")
    await asyncio.sleep(0.1)
    assert [p["html"] for p in old_list.payloads] == ["<p>before</p>"]  # the old tab was sent nothing more

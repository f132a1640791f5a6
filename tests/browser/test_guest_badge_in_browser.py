"""Real Chromium: a guest cannot take the owner's name, and what a guest writes is marked as a guest's."""

from __future__ import annotations

import pytest

from tests.browser.test_chat_in_browser import create_room, join_room, log, say, sign_up

pytestmark = pytest.mark.browser

NAME_IN_USE = "That name is already used in this room; choose another."


def invite_link(owner) -> str:
    owner.get_by_role("button", name="Invite").click()
    owner.get_by_role("button", name="Create link").click()
    link = owner.get_by_label("Invite link").input_value()
    owner.get_by_role("button", name="Close").click()
    return link


def test_a_guest_is_refused_the_owners_name_and_marked_on_messages_and_in_people(browser, live_app, artifacts):
    base = live_app.base_url
    owner_ctx, namesake_ctx, guest_ctx = browser.new_context(), browser.new_context(), browser.new_context()
    owner = sign_up(owner_ctx, base, "olive", "Olive")
    room_url = create_room(owner, "Partners")
    namesake = sign_up(namesake_ctx, base, "olive2", "Olive")  # an account: its username tells it apart
    join_room(namesake, room_url)
    link = invite_link(owner)

    guest = guest_ctx.new_page()
    guest.goto(link)
    guest.get_by_label("Your name").fill("OLIVE")
    guest.get_by_role("button", name="Join as a guest").click()
    guest.get_by_text(NAME_IN_USE).wait_for()  # under the name field, on the join page
    assert guest.get_by_label("Your name").input_value() == "OLIVE"
    guest.screenshot(path=str(artifacts / "join-name-in-use.png"))
    guest.get_by_label("Your name").fill("Gus")
    guest.get_by_role("button", name="Join as a guest").click()
    guest.wait_for_url(room_url)
    log(guest).wait_for()

    owner.get_by_text("People (4)").wait_for(timeout=3000)
    assert "Gus\nGuest, no account" in owner.get_by_role("list", name="Participants").inner_text()
    say(owner, "Welcome, Gus!")
    log(namesake).get_by_text("Welcome, Gus!").wait_for(timeout=3000)
    say(namesake, "Hello from the other Olive")  # right after the owner, under the same name
    log(owner).get_by_text("Hello from the other Olive").wait_for(timeout=3000)
    say(guest, "This is Olive speaking")
    log(owner).get_by_text("This is Olive speaking").wait_for(timeout=3000)

    articles = log(owner).locator("article.chat-msg")
    guest_message = log(owner).locator("article.chat-kind-guest")
    assert guest_message.count() == 1
    badge = guest_message.locator(".chat-msg-head .chat-badge")
    assert badge.inner_text() == "guest" and badge.bounding_box()["width"] > 5
    assert guest_message.locator(".chat-msg-head").inner_text().startswith("Gus\nguest")
    assert log(owner).locator("article.chat-kind-user .chat-badge").count() == 0
    # Two people named Olive: each message keeps its own visible header, not one merged under the first.
    heads = articles.locator(".chat-msg-head")
    assert heads.count() == 3 and all(heads.nth(i).bounding_box()["width"] > 40 for i in range(3))
    owner.screenshot(path=str(artifacts / "guest-badge.png"))
    for context in (owner_ctx, namesake_ctx, guest_ctx):
        context.close()

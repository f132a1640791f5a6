"""Real Chromium: an owner invites a guest by link, they chat live, the owner removes the guest."""

from __future__ import annotations

import re

import pytest

from tests.browser.test_chat_in_browser import create_room, log, say, sign_up

pytestmark = pytest.mark.browser


def test_a_guest_joins_by_link_chats_live_and_loses_access_when_removed(browser, live_app, artifacts):
    base = live_app.base_url
    owner_ctx, guest_ctx = browser.new_context(), browser.new_context()
    owner = sign_up(owner_ctx, base, "olive", "Olive")
    room_url = create_room(owner, "Partners")

    owner.get_by_role("button", name="Invite").click()
    owner.get_by_role("button", name="Create link").click()
    link = owner.get_by_label("Invite link").input_value()
    assert re.fullmatch(rf"{re.escape(base)}/join/[A-Za-z0-9_-]{{43}}", link)
    owner.screenshot(path=str(artifacts / "invite-dialog.png"))
    owner.get_by_role("button", name="Close").click()

    guest = guest_ctx.new_page()
    guest.goto(link)
    guest.get_by_role("heading", name="Partners").wait_for()
    guest.screenshot(path=str(artifacts / "join-page.png"))
    guest.get_by_label("Your name").fill("Gus from Acme")
    guest.get_by_role("button", name="Join as a guest").click()
    guest.wait_for_url(room_url)
    log(guest).wait_for()
    assert "HttpOnly" not in guest.evaluate("document.cookie") and "chatapp_guest" not in guest.evaluate(
        "document.cookie"
    )  # the guest session cookie is HttpOnly: scripts cannot read it

    owner.get_by_text("People (3)").wait_for()
    assert "Gus from Acme\nGuest" in owner.get_by_role("list", name="Participants").inner_text()
    say(owner, "Welcome, Gus!")
    log(guest).get_by_text("Welcome, Gus!").wait_for()
    say(guest, "Thanks, glad to be here")
    log(owner).get_by_text("Thanks, glad to be here").wait_for()
    guest.screenshot(path=str(artifacts / "guest-chatting.png"))

    guest.goto(f"{base}/")  # the guest's lobby has only this room and no way to create one
    guest.get_by_text("Partners").wait_for()
    assert guest.get_by_role("button", name="Create room").count() == 0
    guest.goto(room_url)
    log(guest).wait_for()

    remove = owner.get_by_role("button", name="Remove Gus from Acme")
    remove.click()
    owner.get_by_role("button", name="Confirm: remove Gus from Acme").click()
    guest.wait_for_url(f"{base}/?left=removed")  # pushed to the guest's tab: it leaves without doing anything
    guest.get_by_text("You were removed from that room.").wait_for()
    owner.get_by_text("People (2)").wait_for()
    guest.goto(room_url)
    guest.get_by_text("Room not found").wait_for()
    guest.goto(link)  # the link they came in by was revoked with their removal
    guest.get_by_text("This invite link is not valid").wait_for()
    guest.screenshot(path=str(artifacts / "guest-removed.png"))
    owner_ctx.close()
    guest_ctx.close()

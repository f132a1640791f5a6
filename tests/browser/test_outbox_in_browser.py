"""Real Chromium: what is sent while the server is away is kept, resent after it is back, saved once; drafts
survive reloads."""

from __future__ import annotations

import pytest

from tests.browser.conftest import start_app, stop_app
from tests.browser.test_chat_in_browser import create_room, join_room, log, say, sign_up

pytestmark = pytest.mark.browser

WAIT_MS = 30_000  # liveness: returns as soon as it happens


def _count(page, text: str) -> int:
    return log(page).locator("article .chat-body").get_by_text(text, exact=True).count()


def test_a_message_sent_while_the_server_is_down_arrives_once_on_both_screens(browser, tmp_path, artifacts):
    app = start_app(tmp_path / "data")
    port = int(app.base_url.rsplit(":", 1)[1])
    try:
        alice = sign_up(browser.new_context(), app.base_url, "alice", "Alice")
        room_url = create_room(alice, "Outbox")
        bob = sign_up(browser.new_context(), app.base_url, "bob", "Bob")
        join_room(bob, room_url)
        say(alice, "before the outage")
        log(bob).get_by_text("before the outage").wait_for(timeout=WAIT_MS)

        stop_app(app)
        alice.get_by_text("Trying to reconnect").wait_for(timeout=WAIT_MS)  # NiceGUI's popup
        say(alice, "sent while away")
        outbox = alice.get_by_role("list", name="Messages not sent yet")
        outbox.get_by_text("sent while away").wait_for(timeout=WAIT_MS)
        outbox.get_by_text("Not sent, retrying").wait_for(timeout=WAIT_MS)
        assert alice.get_by_label("Message", exact=True).input_value() == ""  # it left the box for the outbox
        alice.get_by_label("Message", exact=True).fill("a draft I have not sent")
        alice.screenshot(path=str(artifacts / "outbox-while-down.png"))
        alice.evaluate("window.__old_page = true")

        app = start_app(tmp_path / "data", port=port)
        # Both pages reconnect, find their old client gone and reload; Alice's outbox comes back and goes.
        alice.wait_for_function("window.__old_page === undefined", timeout=WAIT_MS)
        for page in (alice, bob):
            log(page).get_by_text("sent while away").wait_for(timeout=WAIT_MS)
        alice.get_by_role("list", name="Messages not sent yet").wait_for(state="detached", timeout=WAIT_MS)
        alice.reload()  # one more reload must not send it again
        log(alice).get_by_text("sent while away").wait_for(timeout=WAIT_MS)
        bob.reload()
        log(bob).get_by_text("sent while away").wait_for(timeout=WAIT_MS)
        assert _count(alice, "sent while away") == 1 and _count(bob, "sent while away") == 1
        assert alice.get_by_label("Message", exact=True).input_value() == "a draft I have not sent"
        alice.screenshot(path=str(artifacts / "outbox-after-restart.png"))
    finally:
        stop_app(app)


def test_a_draft_survives_a_reload_and_is_kept_per_room(browser, live_app):
    alice = sign_up(browser.new_context(), live_app.base_url, "alice", "Alice")
    first = create_room(alice, "First")
    alice.get_by_label("Message", exact=True).fill("half a thought")
    alice.goto(live_app.base_url + "/")
    second = create_room(alice, "Second")
    assert alice.get_by_label("Message", exact=True).input_value() == ""  # another room, another draft
    alice.goto(first)
    alice.get_by_label("Message", exact=True).wait_for()
    assert alice.get_by_label("Message", exact=True).input_value() == "half a thought"
    say(alice, "half a thought")
    log(alice).get_by_text("half a thought").wait_for(timeout=WAIT_MS)
    alice.reload()
    log(alice).get_by_text("half a thought").wait_for(timeout=WAIT_MS)
    assert alice.get_by_label("Message", exact=True).input_value() == ""  # sent drafts are gone
    alice.goto(second)
    log(alice).wait_for()
    assert _count(alice, "half a thought") == 0

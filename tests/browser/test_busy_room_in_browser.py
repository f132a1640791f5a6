"""Real Chromium: a page says which broadcasts it took in, so a busy room never leaves a reading tab out."""

from __future__ import annotations

import pytest

from tests.browser.conftest import start_app, stop_app
from tests.browser.test_chat_in_browser import create_room, join_room, log, say, sign_up

pytestmark = pytest.mark.browser

WAIT_MS = 30_000  # liveness: returns as soon as it happens
MAX_BACKLOG = 10
MESSAGES = 60  # six times what a tab may be behind


def test_a_tab_that_reads_gets_every_message_of_a_busy_room(browser, tmp_path):
    app = start_app(tmp_path / "data", {"CHATAPP_LIVE_MAX_BACKLOG": str(MAX_BACKLOG), "CHATAPP_MESSAGE_BURST": "0"})
    try:
        alice = sign_up(browser.new_context(), app.base_url, "alice", "Alice")
        room_url = create_room(alice, "Busy")
        bob = sign_up(browser.new_context(), app.base_url, "bob", "Bob")
        join_room(bob, room_url)
        for number in range(MESSAGES):
            say(alice, f"busy {number}")
            log(alice).get_by_text(f"busy {number}", exact=True).wait_for(timeout=WAIT_MS)  # one broadcast each
        log(bob).get_by_text(f"busy {MESSAGES - 1}", exact=True).wait_for(timeout=WAIT_MS)
        bodies = log(bob).locator("article .chat-body")
        assert [bodies.nth(i).inner_text() for i in range(bodies.count())] == [f"busy {n}" for n in range(MESSAGES)]
    finally:
        stop_app(app)

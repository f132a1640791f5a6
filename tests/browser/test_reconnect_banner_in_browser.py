"""Real Chromium: while the server is away, NiceGUI's reconnect notice is a banner at the top that screen
readers hear, and the composer (draft and outbox line) at the bottom stays visible."""

from __future__ import annotations

import pytest

from tests.browser.conftest import start_app, stop_app
from tests.browser.test_chat_in_browser import create_room, log, say, sign_up

pytestmark = pytest.mark.browser

WAIT_MS = 30_000  # liveness: returns as soon as it happens
SCREENSHOT = "/tmp/reconnect.png"


def _overlaps(a: dict, b: dict) -> bool:
    """Whether two Playwright bounding boxes share any area."""
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


def test_the_reconnect_notice_leaves_the_composer_and_its_outbox_visible(browser, tmp_path, artifacts):
    app = start_app(tmp_path / "data")
    port = int(app.base_url.rsplit(":", 1)[1])
    try:
        alice = sign_up(browser.new_context(), app.base_url, "alice", "Alice")
        create_room(alice, "Outage")
        say(alice, "before the outage")
        log(alice).get_by_text("before the outage").wait_for(timeout=WAIT_MS)

        stop_app(app)
        notice = alice.get_by_role("status").filter(has_text="Trying to reconnect")  # announced, politely
        notice.get_by_text("Trying to reconnect").wait_for(timeout=WAIT_MS)
        say(alice, "sent while away")
        outbox = alice.get_by_role("list", name="Messages not sent yet")
        outbox.get_by_text("Not sent, retrying").wait_for(timeout=WAIT_MS)
        box = alice.get_by_label("Message", exact=True)
        box.fill("a draft typed during the outage")
        alice.wait_for_function("getComputedStyle(document.getElementById('popup')).opacity === '1'")

        shown = alice.locator("#popup").bounding_box()
        assert shown is not None and shown["y"] >= 0 and shown["y"] + shown["height"] < 100  # at the top
        for covered in (box, outbox):
            assert covered.is_visible()
            assert not _overlaps(shown, covered.bounding_box()), covered
        assert notice.get_by_text("Connection lost.").is_visible()
        assert box.input_value() == "a draft typed during the outage"
        alice.screenshot(path=SCREENSHOT)
        alice.screenshot(path=str(artifacts / "reconnect-banner.png"))
        alice.evaluate("window.__old_page = true")

        app = start_app(tmp_path / "data", port=port)
        alice.wait_for_function("window.__old_page === undefined", timeout=WAIT_MS)  # reconnected, reloaded
        log(alice).get_by_text("sent while away").wait_for(timeout=WAIT_MS)
        assert not alice.get_by_text("Trying to reconnect").is_visible()
    finally:
        stop_app(app)

"""Real Chromium: a tab whose socket is refused because the browser's session changed reloads itself
under the session the browser has now (it used to stay on "Trying to reconnect" for good)."""

from __future__ import annotations

import pytest

from tests.browser.test_chat_in_browser import sign_up

pytestmark = pytest.mark.browser


def test_a_tab_opened_before_signing_in_elsewhere_reloads_when_its_socket_comes_back(browser, live_app, artifacts):
    context = browser.new_context()
    earlier = context.new_page()
    earlier.goto(f"{live_app.base_url}/sign-in")
    earlier.wait_for_function("window.socket && window.socket.connected")
    sign_up(context, live_app.base_url, "alice", "Alice")  # another tab: the browser now has a session
    # The first tab's connection drops and comes back (a network blip): its page was rendered for no
    # session, the browser now sends one, so its socket is refused, and the page is rendered again.
    earlier.evaluate("window.socket.io.engine.close()")
    earlier.wait_for_url(f"{live_app.base_url}/")  # signed in: the lobby
    earlier.get_by_label("Room name").wait_for()
    earlier.screenshot(path=str(artifacts / "reloaded-into-the-lobby.png"))
    context.close()

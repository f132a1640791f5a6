"""Real Chromium: another site cannot frame chatapp, and chatapp itself works under its Content-Security-Policy."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.conftest import _free_port
from tests.browser.test_chat_in_browser import create_room, log, say, sign_up
from tests.timing import eventually_blocking

pytestmark = pytest.mark.browser

# Every CSP violation, however Chromium words its console message, also fires this DOM event.
REPORT_VIOLATIONS = """
document.addEventListener('securitypolicyviolation', (e) =>
  console.error(`CSP violation: ${e.effectiveDirective} blocked ${e.blockedURI || 'inline'} at ${e.sourceFile}`));
"""


@pytest.fixture
def other_site(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A second web server on another port (another origin): (its base URL, the folder it serves)."""
    root = tmp_path / "other-site"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", _free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def console_of(context) -> list[str]:
    """Every console message of the context's pages from now on, as "type: text"."""
    messages: list[str] = []
    context.on("console", lambda message: messages.append(f"{message.type}: {message.text}"))
    return messages


def csp_complaints(messages: list[str]) -> list[str]:
    return [m for m in messages if "Content Security Policy" in m or "CSP violation" in m]


def test_another_site_cannot_frame_the_app(browser, live_app, other_site, artifacts):
    base, root = other_site
    (root / "frame.html").write_text(
        "<!doctype html><title>Evil</title><h1>Win a prize</h1>"
        f'<iframe id="victim" src="{live_app.base_url}/sign-in" width="800" height="600"></iframe>'
    )
    context = browser.new_context()
    messages = console_of(context)
    page = context.new_page()
    page.goto(f"{base}/frame.html")
    page.wait_for_load_state("load")
    # Chromium says when it refuses the frame: after that, nothing of the app can build itself in it.
    eventually_blocking(
        lambda: any("frame-ancestors 'none'" in m for m in messages),
        pause=lambda seconds: page.wait_for_timeout(seconds * 1000),  # lets Playwright deliver the console events
    )
    page.screenshot(path=str(artifacts / "framed.png"))

    frames = [frame for frame in page.frames if frame is not page.main_frame]
    assert len(frames) == 1
    frame = frames[0]
    assert not frame.url.startswith(live_app.base_url), f"the app's document loaded in the frame: {frame.url}"
    assert frame.locator("form, input").count() == 0, "a sign-in form rendered inside another site's frame"
    assert page.frame_locator("#victim").get_by_label("Username").count() == 0
    assert any("frame-ancestors 'none'" in m for m in messages), messages
    context.close()


def test_the_app_works_under_its_policy_without_violations(browser, live_app, artifacts):
    context = browser.new_context()
    context.add_init_script(REPORT_VIOLATIONS)
    messages = console_of(context)
    sockets = []
    context.on("page", lambda opened: opened.on("websocket", lambda ws: sockets.append(ws)))
    page = context.new_page()

    page.goto(f"{live_app.base_url}/sign-in")
    page.get_by_label("Username").wait_for()
    policy = page.evaluate("async () => (await fetch(location.href)).headers.get('content-security-policy')")
    assert "frame-ancestors 'none'" in policy and "default-src 'self'" in policy
    page.close()

    page = sign_up(context, live_app.base_url, "alice", "Alice")
    create_room(page, "General")
    say(page, "Hello under **CSP**\n```python\nprint('hi')\n```")
    log(page).get_by_text("Hello under").wait_for()
    assert log(page).locator("strong").inner_text() == "CSP"
    assert log(page).locator("pre.codehilite span").count() > 0
    page.reload()
    log(page).get_by_text("Hello under").wait_for()
    page.screenshot(path=str(artifacts / "room-under-csp.png"))

    assert sockets, "no websocket was opened"
    assert all(ws.url.startswith(live_app.base_url.replace("http", "ws")) for ws in sockets)
    assert not any(ws.is_closed() for ws in sockets[-1:]), "the room's websocket was refused"
    assert csp_complaints(messages) == []
    context.close()

"""A room full of markdown built to be slow still opens, after a restart too, and renders each message once."""

from __future__ import annotations

import html

import pytest

from chatapp.live import payloads as message_payloads
from chatapp.live.markdown import render_markdown
from tests.pages.conftest import signed_up
from tests.pages.test_live_room import bodies

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def slow_bodies(count: int) -> list[str]:
    """Messages that took markdown-it-py 0.4-0.7 s each (distinct, so no cache shares their renders)."""
    return [("![" * 1998 if i % 2 else "[" * 3997) + f"{i:02d}" for i in range(count)]


@pytest.mark.settings(message_burst=0)  # 50 messages at once: no rate limit
async def test_the_room_opens_quickly_with_50_such_messages(app):
    runtime, new_user = app
    alice = await signed_up(new_user, "alice", "Alice")
    actor = await runtime.services.accounts.authenticate(alice.http_client.cookies["chatapp_session"])
    room = await runtime.services.rooms.create_room(actor, name="General")
    posted = slow_bodies(50)
    for body in posted:
        await runtime.services.chat.post_message(actor, room.id, body)

    message_payloads._payloads.clear()  # a restart: nothing rendered yet
    render_markdown.cache_clear()
    await alice.open(f"/rooms/{room.id}")  # NiceGUI answers 500 when the page is not built in 3 s
    await alice.should_see("General")
    assert bodies(alice) == [f"<p>{html.escape(body)}</p>" for body in posted], "shown as text"

    shown, calls = bodies(alice), render_markdown.cache_info()
    await alice.open(f"/rooms/{room.id}")  # another tab
    await alice.should_see("General")
    assert bodies(alice) == shown
    assert render_markdown.cache_info() == calls, "the second opening renders nothing"

"""What a reconnecting tab asks for (the browser's side of it is tested in real Chromium)."""

from __future__ import annotations

from datetime import UTC, datetime

from chatapp.pages.message_list import read_catch_up_request


def test_aread_catch_up_request_is_read_defensively():
    """The browser sends where to read on from and the server time it has news up to; anything else is
    ignored (no time: the server uses the time the page was opened)."""
    since = read_catch_up_request({"after": 41, "since": 1_764_000_000_000})
    assert since == (41, datetime(2025, 11, 24, 16, 0, tzinfo=UTC))
    assert read_catch_up_request(41) == (41, None)  # a page script from before the time was sent
    for odd_time in (None, "yesterday", -5, float("nan"), True, [1]):
        assert read_catch_up_request({"after": 3, "since": odd_time}) == (3, None)
    for odd in (None, "41", True, {"since": 5}, {"after": "3"}, {"after": False}, [1, 2]):
        assert read_catch_up_request(odd) is None
    far_future = read_catch_up_request({"after": 0, "since": 1e300})
    assert far_future is not None and far_future[1].year > 2100  # clamped by the room view to its own clock

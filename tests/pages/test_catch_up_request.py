"""What a reconnecting tab asks for (the browser's side of it is tested in real Chromium)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chatapp.live.catch_up import CHANGES_MARGIN, changes_from, read_catch_up_request


def test_a_catch_up_request_is_read_defensively():
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


def test_the_changes_are_asked_for_from_the_browsers_latest_news_kept_between_page_opening_and_now():
    opened = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    now = opened + timedelta(hours=2)
    margin = CHANGES_MARGIN
    assert (
        changes_from(opened + timedelta(minutes=30), opened_at=opened, now=now)
        == opened + timedelta(minutes=30) - margin
    )
    assert changes_from(None, opened_at=opened, now=now) == opened - margin  # no time sent: from the opening
    assert changes_from(opened - timedelta(days=9), opened_at=opened, now=now) == opened - margin  # before: in the page
    assert changes_from(now + timedelta(days=1), opened_at=opened, now=now) == now - margin  # a future time: now

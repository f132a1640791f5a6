"""Markdown rendering on the server: what is kept, what is made inert, and the lobby's plain previews."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chatapp.domain.models import Message, ParticipantKind, Role, Room, RoomSummary, Visibility
from chatapp.pages.lobby import PREVIEW_CHARS, ago, preview
from chatapp.pages.markdown import plain_text, render_markdown


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("Hello **Bob**", "<p>Hello <strong>Bob</strong></p>"),
        ("line one\nline two", "<p>line one<br>\nline two</p>"),
        ("<b>raw</b>", "<p>&lt;b&gt;raw&lt;/b&gt;</p>"),
        ("[x](javascript:alert(1))", "<p>[x](javascript:alert(1))</p>"),
    ],
)
def test_markdown_is_rendered_and_raw_html_is_text(source: str, expected: str) -> None:
    assert render_markdown(source) == expected


def test_links_open_safely_and_code_is_highlighted() -> None:
    link = render_markdown("[docs](https://example.com)")
    assert 'href="https://example.com"' in link and 'rel="noopener noreferrer nofollow"' in link
    code = render_markdown("```python\nprint('hi')\n```")
    assert code.startswith('<pre class="codehilite"><code>') and "<span" in code


def test_previews_are_plain_text_on_one_line() -> None:
    assert plain_text("psst, **secret** plan\n\n- one\n- two") == "psst, secret plan one two"
    assert plain_text("5 < 6 & `x`") == "5 < 6 & x"


def test_lobby_preview_names_the_author_and_is_cut_to_length() -> None:
    now = datetime.now(UTC)
    room = Room(id=1, name="R", topic="", visibility=Visibility.PUBLIC, created_at=now)
    body = "**" + "word " * 100 + "end**"
    message = Message(
        id=1,
        room_id=1,
        participant_id=1,
        author_name="Ann",
        author_kind=ParticipantKind.USER,
        body=body,
        created_at=now,
    )
    line = preview(RoomSummary(room=room, role=Role.OWNER, last_message=message))
    assert line.startswith("Ann: word word") and "*" not in line
    assert len(line) == len("Ann: ") + PREVIEW_CHARS and line.endswith("…")


def test_images_become_links_with_their_alt_text_and_are_never_loaded():
    html = render_markdown(
        '![the chart](https://example.com/c.png "t") ![](http://a.b/i.png) ![x<b>](data:image/png;base64,AA)'
    )
    assert "<img" not in html
    assert '<a href="https://example.com/c.png"' in html and ">the chart</a>" in html
    assert '<a href="http://a.b/i.png"' in html and ">image</a>" in html
    assert 'href="data:' not in html  # only http(s) and mailto links survive the sanitiser
    assert "<b>" not in html


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (5, "just now"),
        (125, "2 min ago"),
        (3 * 3600 + 5, "3 h ago"),
        (86400 + 1, "1 day ago"),
        (3 * 86400, "3 days ago"),
    ],
)
def test_lobby_times_read_the_same_in_every_time_zone(seconds, expected):
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    assert ago(now - timedelta(seconds=seconds), now) == expected
    assert ago(datetime(2026, 3, 4, 9, 0, tzinfo=UTC), now) == "Mar 4, 2026"

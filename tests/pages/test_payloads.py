"""Message payloads are rendered once per message, whoever asks and whatever happens to the asking request."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from chatapp.domain.models import Message, ParticipantKind
from chatapp.live import payloads as message_payloads
from chatapp.live.markdown import render_markdown
from chatapp.live.payloads import payloads_of
from tests.timing import eventually


def messages(count: int, *, first_id: int = 1) -> list[Message]:
    """Messages that take a while to render (a few ms each: a dense list of 4,000 chars)."""
    now = datetime.now(UTC)
    body = ("- a point with *emphasis*, `code` and a [link](https://example.com/a)\n" * 57).strip()
    return [
        Message(
            id=i,
            room_id=1,
            participant_id=1,
            author_name="Ann",
            author_kind=ParticipantKind.USER,
            body=f"{body}\n- number {i}",
            created_at=now,
        )
        for i in range(first_id, first_id + count)
    ]


def renders() -> int:
    """How many times render_markdown was called so far (hits and misses of its cache)."""
    info = render_markdown.cache_info()
    return info.hits + info.misses


@pytest.fixture(autouse=True)
def fresh_caches():
    """Each test starts as after a restart."""
    message_payloads._payloads.clear()
    render_markdown.cache_clear()
    yield
    message_payloads._payloads.clear()


async def test_concurrent_requests_for_the_same_messages_share_one_render() -> None:
    page = messages(5)
    before = renders()
    first, second = await asyncio.gather(payloads_of(page), payloads_of(page))
    assert first == second and [p["id"] for p in first] == [m.id for m in page]
    assert renders() - before == len(page)
    assert await payloads_of(page) == first and renders() - before == len(page)  # from the cache


async def test_a_request_abandoned_while_rendering_still_fills_the_cache() -> None:
    page = messages(5)
    request = asyncio.create_task(payloads_of(page))
    await asyncio.sleep(0.001)  # the render is under way in its thread
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    await eventually(lambda: all(m in message_payloads._payloads for m in page))  # the finished render is cached
    before = renders()
    assert [p["id"] for p in await payloads_of(page)] == [m.id for m in page]
    assert renders() == before, "nothing is rendered again"


async def test_a_request_joining_a_render_under_way_renders_only_what_is_new() -> None:
    page = messages(4)
    before = renders()
    first = asyncio.create_task(payloads_of(page[:3]))
    await asyncio.sleep(0)
    both = await payloads_of(page)
    assert [p["id"] for p in both] == [m.id for m in page] and (await first) == both[:3]
    assert renders() - before == len(page)

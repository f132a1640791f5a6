"""One AI reply per room across processes, through the real services of two runtimes ("processes") on
one PostgreSQL database, their bus its LISTEN/NOTIFY, the model the fake provider over real HTTP: a
second start anywhere is refused, the other process shows the reply and its words and stops it, and a
reply whose process died is saved as interrupted by another one, which frees the room."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from chatapp.app import Runtime, build_runtime, migrate_database
from chatapp.domain.ai_models import RunningReplyRecord
from chatapp.domain.errors import Conflict
from chatapp.domain.events import AiReplyDelta, AiReplyEnded, MessagePosted, room_topic
from chatapp.domain.models import MessageStatus
from chatapp.store.bus import BusPubSub
from tests.conftest import make_settings
from tests.domain.helpers import sign_up
from tests.fake_llm import FakeLLM, Script, fake_llm_fixture  # noqa: F401
from tests.timing import LIVENESS_S

pytestmark = pytest.mark.postgres


@pytest.fixture
async def two(tmp_path, postgres_database: str, fake_llm: FakeLLM) -> AsyncIterator[tuple[Runtime, Runtime]]:
    """Processes A and B: each its own runtime, bus connection and AI service, on one database."""
    built = []
    for name in ("a", "b"):
        settings = make_settings(
            tmp_path / name, postgres_database, ai_model="openai/fake-model", ai_api_base=fake_llm.base_url,
            ai_api_key="k", ai_reply_lost_after=3,
        )  # fmt: skip
        runtime = build_runtime(settings)
        migrate_database(runtime)
        assert isinstance(runtime.pubsub, BusPubSub)  # the default on PostgreSQL
        await runtime.pubsub.start()
        built.append(runtime)
    yield built[0], built[1]
    for runtime in built:
        await runtime.pubsub.stop()
        runtime.engine.dispose()


async def until(check, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + LIVENESS_S
    while not check():
        assert asyncio.get_running_loop().time() < deadline, f"not within {LIVENESS_S} s: {what}"
        await asyncio.sleep(0.02)


async def test_one_reply_per_room_whatever_the_process_shown_and_stopped_from_the_other(two, fake_llm) -> None:
    a, b = two
    alice, _ = await sign_up(a, "alice")
    room = await a.services.rooms.create_room(alice, name="Ops")
    heard_on_b: list = []
    b.pubsub.subscribe(room_topic(room.id), heard_on_b.append)
    fake_llm.push(Script(tokens=400, tokens_per_second=40))
    started = await a.services.ai.start_reply(alice, room.id)
    with pytest.raises(Conflict):
        await b.services.ai.start_reply(alice, room.id)
    with pytest.raises(Conflict):
        await a.services.ai.start_reply(alice, room.id)
    await until(lambda: any(isinstance(e, AiReplyDelta) for e in heard_on_b), "B saw the words")
    seen_on_b = "".join(e.text for e in heard_on_b if isinstance(e, AiReplyDelta))
    shown = await b.services.ai.get_reply_in_progress(alice, room.id)  # before the first beat: A tells it
    assert shown is not None and shown.reply_id == started.reply_id
    assert shown.text.startswith(seen_on_b) and len(shown.text) >= len(seen_on_b) > 0
    assert (await a.services.ai.get_reply_in_progress(alice, room.id)).text.startswith(shown.text)
    assert await b.services.ai.stop_reply(alice, room.id)
    await until(lambda: any(isinstance(e, AiReplyEnded) for e in heard_on_b), "B heard it ended")
    ended = next(e for e in heard_on_b if isinstance(e, AiReplyEnded))
    assert ended.reply_id == started.reply_id and ended.status == MessageStatus.STOPPED.value
    saved = (await b.services.chat.list_messages(alice, room.id)).messages[-1]
    assert saved.status is MessageStatus.STOPPED and saved.body.startswith(shown.text.strip())  # saved text is trimmed
    assert await b.services.ai.get_reply_in_progress(alice, room.id) is None
    fake_llm.push(Script(reply="Again."))
    again = await b.services.ai.start_reply(alice, room.id)  # the room is free, for any process
    await asyncio.wait_for(b.services.ai.wait_until_answered(room.id), LIVENESS_S)
    assert again.reply_id != started.reply_id


async def test_a_reply_whose_process_died_is_saved_as_interrupted_and_the_room_can_ask_again(two, fake_llm) -> None:
    a, b = two
    alice, _ = await sign_up(a, "alice")
    room = await a.services.rooms.create_room(alice, name="Ops")
    heard_on_a: list = []
    a.pubsub.subscribe(room_topic(room.id), heard_on_a.append)
    long_ago = datetime.now(UTC) - timedelta(minutes=1)
    dead = RunningReplyRecord(room.id, "dead0reply", "gone-process", None, "Half an ans", long_ago, long_ago)
    await b.tx.run(lambda uow: uow.running_replies.add(dead), write=True)  # as a killed process left it
    assert await a.services.ai.get_reply_in_progress(alice, room.id) is None  # silent too long: not shown
    assert await b.services.ai.sweep_lost_replies() == 1
    assert await a.services.ai.sweep_lost_replies() == 0  # once, by whichever process came first
    await until(lambda: any(isinstance(e, AiReplyEnded) for e in heard_on_a), "A heard it ended")
    ended = next(e for e in heard_on_a if isinstance(e, AiReplyEnded))
    assert ended.status == "interrupted" and "cut off" in ended.notice
    assert any(isinstance(e, MessagePosted) and e.message_id == ended.message_id for e in heard_on_a)
    saved = (await a.services.chat.list_messages(alice, room.id)).messages[-1]
    assert (saved.body, saved.status) == ("Half an ans", MessageStatus.INTERRUPTED)
    fake_llm.push(Script(reply="Whole answer."))
    await a.services.ai.start_reply(alice, room.id)
    await asyncio.wait_for(a.services.ai.wait_until_answered(room.id), LIVENESS_S)


async def test_a_start_that_finds_a_dead_processs_reply_takes_the_room_over(two, fake_llm) -> None:
    a, b = two
    alice, _ = await sign_up(a, "alice")
    room = await a.services.rooms.create_room(alice, name="Ops")
    long_ago = datetime.now(UTC) - timedelta(minutes=1)
    dead = RunningReplyRecord(room.id, "dead1reply", "gone-process", None, "Cut", long_ago, long_ago)
    await b.tx.run(lambda uow: uow.running_replies.add(dead), write=True)
    fake_llm.push(Script(reply="Fresh."))
    await a.services.ai.start_reply(alice, room.id)
    await asyncio.wait_for(a.services.ai.wait_until_answered(room.id), LIVENESS_S)
    bodies = [(m.body, m.status) for m in (await a.services.chat.list_messages(alice, room.id)).messages]
    assert bodies == [("Cut", MessageStatus.INTERRUPTED), ("Fresh.", MessageStatus.COMPLETE)]

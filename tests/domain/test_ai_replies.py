"""The AI participant's replies through real litellm calls to the fake provider, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from chatapp.domain.ai import AiReplies
from chatapp.domain.ai_settings import AiSettings
from chatapp.domain.errors import Conflict, NotFound
from chatapp.domain.events import AiReplyDelta, AiReplyEnded, AiReplyStarted, MessagePosted, room_topic
from chatapp.domain.models import ParticipantKind
from chatapp.llm import LitellmClient
from chatapp.store.db import SqlTransactor
from chatapp.store.pubsub import InProcessPubSub
from tests.domain.helpers import sign_up
from tests.fake_llm import FakeLLM, Script, fake_llm_fixture  # noqa: F401 - the fake_llm fixture
from tests.timing import LIVENESS_S

MODEL = "openai/fake-model"


@pytest.fixture
def ai(request, runtime, fake_llm: FakeLLM):
    """AiReplies on the test's database, talking to the fake provider; `events` records the room events.
    The reply's hard deadline is generous unless the test marks its own (@pytest.mark.ai_timeout(s))."""
    marker = request.node.get_closest_marker("ai_timeout")
    pubsub = InProcessPubSub()
    llm = LitellmClient(api_base=fake_llm.base_url, api_key="test-key", retries=0, read_timeout=LIVENESS_S)
    tx = SqlTransactor(runtime.engine)
    settings = AiSettings(tx=tx, pubsub=pubsub, models=(MODEL,), default_model=MODEL, max_instruction_chars=2000)
    replies = AiReplies(
        tx=tx,
        pubsub=pubsub,
        llm=llm,
        ai_name="Assistant",
        settings=settings,
        context_tokens=8000,
        timeout=marker.args[0] if marker else LIVENESS_S,
    )
    replies.pubsub = pubsub
    return replies


def record_events(ai: AiReplies, room_id: int) -> list:
    events: list = []
    ai.pubsub.subscribe(room_topic(room_id), events.append)
    return events


async def room_with_talk(runtime, name: str = "Launch"):
    alice, _ = await sign_up(runtime, "alice", "Alice")
    room = await runtime.services.rooms.create_room(alice, name=name, topic="v2")
    await runtime.services.chat.post_message(alice, room.id, "What is left before the launch?")
    return alice, room


async def finished(ai: AiReplies, reply) -> None:
    """Wait until the reply has ended and its events have reached their subscribers."""
    await asyncio.wait_for(ai.wait_until_answered(reply.room_id), timeout=LIVENESS_S)
    await ai.pubsub.settled()


async def test_a_reply_streams_in_coalesced_deltas_and_is_saved_once_with_usage(runtime, ai, fake_llm):
    alice, room = await room_with_talk(runtime)
    events = record_events(ai, room.id)
    fake_llm.push(Script(tokens=40, tokens_per_second=100))  # 0.4 s of text
    reply = await ai.start_reply(alice, room.id)
    await finished(ai, reply)

    deltas = [e for e in events if isinstance(e, AiReplyDelta)]
    assert isinstance(events[0], AiReplyStarted)
    assert 2 <= len(deltas) <= 8  # about 10 a second, not one per token
    streamed = "".join(d.text for d in deltas)
    assert streamed == fake_llm.last_request.text_sent
    posted = [e for e in events if isinstance(e, MessagePosted)]
    ended = events[-1]
    assert isinstance(ended, AiReplyEnded) and ended.status == "complete" and ended.notice == ""
    assert len(posted) == 1 and posted[0].message_id == ended.message_id
    saved = (await runtime.services.chat.list_messages(alice, room.id)).messages[-1]
    assert saved.body == streamed and saved.author_kind is ParticipantKind.AI and saved.author_name == "Assistant"
    with runtime.engine.connect() as conn:
        row = conn.execute(
            text("SELECT status, model, prompt_tokens, completion_tokens, latency_ms FROM messages WHERE id = :id"),
            {"id": saved.id},
        ).one()
    assert row[0] == "complete" and row[1] == MODEL and row[3] == 40 and row[2] > 0 and row[4] >= 300
    assert await ai.get_reply_in_progress(alice, room.id) is None


async def test_the_request_holds_only_this_rooms_talk_with_people_outside_the_system_part(runtime, ai, fake_llm):
    alice, room = await room_with_talk(runtime)
    other = await runtime.services.rooms.create_room(alice, name="Elsewhere")
    await runtime.services.chat.post_message(alice, other.id, "secret from another room")
    await finished(ai, await ai.start_reply(alice, room.id))
    messages = fake_llm.last_request.messages
    assert messages[0]["role"] == "system" and "What is left" not in messages[0]["content"]
    assert messages[1:] == [{"role": "user", "content": "Alice: What is left before the launch?"}]
    assert "secret from another room" not in str(messages)


async def test_stop_closes_the_provider_stream_and_keeps_the_partial_text(runtime, ai, fake_llm):
    alice, room = await room_with_talk(runtime)
    events = record_events(ai, room.id)
    fake_llm.push(Script(tokens=500, tokens_per_second=50))
    await ai.start_reply(alice, room.id)
    await fake_llm.wait_until_async(lambda: fake_llm.requests and fake_llm.last_request.tokens_sent >= 5)
    assert await ai.stop_reply(alice, room.id) is True
    request = fake_llm.last_request
    await fake_llm.wait_until_async(lambda: request.done)
    assert request.disconnected_early and request.tokens_sent < 500
    ended = events[-1]
    assert ended.status == "stopped"
    saved = (await runtime.services.chat.list_messages(alice, room.id)).messages[-1]
    assert saved.body.startswith("tok0 tok1 tok2 tok3 tok4") and saved.id == ended.message_id


@pytest.mark.parametrize(
    ("script", "saved_text"),
    [(Script(status=500), False), (Script(status=429), False), (Script(tokens=50, drop_after=6), True)],
)
async def test_failures_give_a_notice_keep_partial_text_and_the_next_reply_works(
    runtime, ai, fake_llm, script, saved_text
):
    alice, room = await room_with_talk(runtime)
    events = record_events(ai, room.id)
    fake_llm.push(script)
    await finished(ai, await ai.start_reply(alice, room.id))
    ended = events[-1]
    assert ended.status == "failed" and ended.notice and "test-key" not in ended.notice
    assert (ended.message_id is not None) is saved_text
    await finished(ai, await ai.start_reply(alice, room.id))  # the room keeps working
    assert events[-1].status == "complete"


@pytest.mark.ai_timeout(1.0)  # the hard deadline per reply (CHATAPP_AI_TIMEOUT)
async def test_a_stall_hits_the_deadline(runtime, ai, fake_llm):
    alice, room = await room_with_talk(runtime)
    events = record_events(ai, room.id)
    fake_llm.push(Script(tokens=50, stall_after=3))
    await finished(ai, await ai.start_reply(alice, room.id))
    assert events[-1].status == "failed" and "too long" in events[-1].notice
    request = fake_llm.last_request
    await fake_llm.wait_until_async(lambda: request.done)
    assert request.disconnected_early


async def test_one_reply_per_room_and_only_participants_may_ask(runtime, ai, fake_llm):
    alice, room = await room_with_talk(runtime)
    mallory, _ = await sign_up(runtime, "mallory", "Mallory")
    secret = await runtime.services.rooms.create_room(alice, name="Secret", private=True)
    fake_llm.set_default(Script(tokens=30, tokens_per_second=100))
    reply = await ai.start_reply(alice, room.id)
    with pytest.raises(Conflict):
        await ai.start_reply(alice, room.id)
    await finished(ai, reply)
    with pytest.raises(NotFound):
        await ai.start_reply(mallory, secret.id)
    assert (await ai.stop_reply(alice, room.id)) is False


async def test_with_no_model_configured_the_room_is_told_how_to_set_one(runtime, ai, fake_llm):
    alice, room = await room_with_talk(runtime)
    events = record_events(ai, room.id)
    ai._settings.default_model, ai._settings.models = "", ()  # CHATAPP_AI_MODEL unset
    await finished(ai, await ai.start_reply(alice, room.id))
    assert events[-1].status == "failed" and "CHATAPP_AI_MODEL" in events[-1].notice
    assert fake_llm.requests == []


async def test_a_reply_that_cannot_be_saved_still_ends_with_a_notice(runtime, ai, fake_llm):
    alice, room = await room_with_talk(runtime)
    events = record_events(ai, room.id)
    fake_llm.push(Script(tokens=20, tokens_per_second=20))
    reply = await ai.start_reply(alice, room.id)
    await fake_llm.wait_for_requests_async(1)  # the prompt is built: the answer is streaming
    with runtime.engine.begin() as conn:  # now the database refuses the reply's insert
        conn.exec_driver_sql("ALTER TABLE messages RENAME TO messages_away")
    try:
        await finished(ai, reply)
    finally:
        with runtime.engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE messages_away RENAME TO messages")
    ended = events[-1]
    assert isinstance(ended, AiReplyEnded) and ended.status == "failed" and "could not be saved" in ended.notice
    assert await ai.get_reply_in_progress(alice, room.id) is None


async def test_provider_text_is_cleaned_like_user_text_and_never_logged(runtime, ai, fake_llm, caplog):
    """A NUL lost the reply on PostgreSQL (and the whole text went to the log as a SQL parameter); a
    lone surrogate lost it on both databases."""
    alice, room = await room_with_talk(runtime)
    events = record_events(ai, room.id)
    fake_llm.push(Script(reply="Secret launch plan:\x00 step one \ud800 step two\x07 done"))
    with caplog.at_level("DEBUG"):
        reply = await ai.start_reply(alice, room.id)
        await finished(ai, reply)
    ended = events[-1]
    assert isinstance(ended, AiReplyEnded) and ended.status == "complete", ended
    saved = (await runtime.services.chat.list_messages(alice, room.id)).messages[-1]
    assert saved.body == "Secret launch plan: step one  step two done"
    streamed = "".join(e.text for e in events if isinstance(e, AiReplyDelta))
    assert not any(ch in streamed for ch in "\x00\ud800\x07")
    assert "launch plan" not in caplog.text


async def test_a_failed_statement_names_no_parameter_in_its_error(runtime):
    """Whatever fails to save, the error (and so the log) never carries the text that was sent."""
    with pytest.raises(Exception) as failed, runtime.engine.connect() as conn:
        conn.execute(text("SELECT * FROM no_such_table WHERE body = :body"), {"body": "the secret plan"})
    assert "the secret plan" not in str(failed.value)

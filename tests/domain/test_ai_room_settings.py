"""Room AI settings, regenerate, usage, the AI in every room and the litellm Router config, through real
litellm calls to the fake provider, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from sqlalchemy import text

from chatapp.domain.ai import AiReplies
from chatapp.domain.ai_settings import AiSettings
from chatapp.domain.chat import Chat
from chatapp.domain.errors import Conflict, Forbidden, NotFound, ValidationError
from chatapp.domain.events import AiNotice, AiReplyEnded, AiReplyStarted, MessagePosted, MessageUpdated, room_topic
from chatapp.domain.limits import MemoryRateStore, Rate, RateLimited, SharedRateLimiter
from chatapp.domain.models import AiMode, CatchUp, ParticipantKind
from chatapp.domain.room_settings import RoomSettings, RoomSettingsChanges
from chatapp.domain.rooms import RoomLimits, Rooms
from chatapp.llm import LitellmClient, RouterConfigError, read_router_config
from chatapp.store.db import SqlTransactor
from chatapp.store.pubsub import InProcessPubSub
from tests.domain.helpers import sign_up
from tests.fake_llm import FakeLLM, Script, fake_llm_fixture  # noqa: F401 - the fake_llm fixture
from tests.timing import LIVENESS_S

MODEL, OTHER = "openai/fake-model", "openai/fake-large"


class Wired:
    """AiSettings, AiReplies and a Chat that hands posted messages to the AI, on one pub/sub."""

    def __init__(
        self,
        runtime,
        llm: LitellmClient,
        models: tuple[str, ...] = (MODEL, OTHER),
        limit: SharedRateLimiter | None = None,
    ) -> None:
        tx = SqlTransactor(runtime.engine)
        self.pubsub = InProcessPubSub()
        self.settings = AiSettings(
            tx=tx, pubsub=self.pubsub, models=models, default_model=models[0], max_instruction_chars=2000
        )
        self.ai = AiReplies(
            tx=tx,
            pubsub=self.pubsub,
            llm=llm,
            ai_name="Assistant",
            settings=self.settings,
            context_tokens=8000,
            timeout=LIVENESS_S,
            limit=limit,
        )
        self.ai.subscribe()  # the AI hears of the messages posted
        self.chat = Chat(tx=tx, pubsub=self.pubsub, max_message_chars=4000, page_size=50)
        self.room_settings = RoomSettings(tx=tx, pubsub=self.pubsub, limits=RoomLimits(), ai=self.settings)

    async def update_ai(self, actor, room_id: int, *, mode: str, instruction: str, model: str | None) -> None:
        """The owner saves the AI's settings (model None: the server's default) through Room settings."""
        changes = RoomSettingsChanges(mode=mode, instruction=instruction, model=model or "")
        await self.room_settings.update_room_settings(actor, room_id, changes)

    def events(self, room_id: int) -> list:
        seen: list = []
        self.pubsub.subscribe(room_topic(room_id), seen.append)
        return seen

    async def settled(self, room_id: int) -> None:
        """Wait until every event so far was handled (the AI decided whether to answer) and the room's AI
        is not answering any more, and its events reached their subscribers."""
        await self.pubsub.settled()
        await asyncio.wait_for(self.ai.wait_until_answered(room_id), timeout=LIVENESS_S)
        await self.pubsub.settled()


@pytest.fixture
def wired(runtime, fake_llm: FakeLLM) -> Wired:
    return Wired(
        runtime, LitellmClient(api_base=fake_llm.base_url, api_key="test-key", retries=0, read_timeout=LIVENESS_S)
    )


async def owner_and_member(runtime):
    alice, _ = await sign_up(runtime, "alice", "Alice")
    bob, _ = await sign_up(runtime, "bob", "Bob")
    room = await runtime.services.rooms.create_room(alice, name="Launch", topic="v2")
    await runtime.services.membership.join(bob, room.id)
    return alice, bob, room


async def test_every_room_has_its_ai_participant_from_the_start(runtime):
    alice, _ = await sign_up(runtime, "alice", "Alice")
    room = await runtime.services.rooms.create_room(alice, name="Fresh", private=True)
    people = await runtime.services.membership.list_participants(alice, room.id)
    assert [(p.display_name, p.kind) for p in people] == [
        ("Alice", ParticipantKind.USER),
        ("Assistant", ParticipantKind.AI),
    ]


async def test_the_owner_changes_mode_instruction_and_model_and_the_next_reply_uses_them(runtime, wired, fake_llm):
    alice, bob, room = await owner_and_member(runtime)
    view = await wired.settings.get_ai_settings(alice, room.id)
    assert view.can_edit and view.settings.mode is AiMode.MENTION and view.models == (MODEL, OTHER)
    assert not (await wired.settings.get_ai_settings(bob, room.id)).can_edit

    await wired.update_ai(alice, room.id, mode="every", instruction="Talk like a pirate.", model=OTHER)
    fake_llm.set_default(Script(reply="Arr, ready."))
    await wired.chat.post_message(bob, room.id, "Is the release ready?")  # no @ai: mode "every" answers anyway
    await wired.settled(room.id)
    request = fake_llm.last_request
    assert request.model == "fake-large"  # the room's model, as litellm sends it to the provider
    system = request.messages[0]["content"]
    assert "Talk like a pirate." in system and "Is the release ready?" not in system

    await wired.update_ai(alice, room.id, mode="off", instruction="", model=None)
    await wired.chat.post_message(bob, room.id, "@ai are you there?")
    await wired.settled(room.id)
    assert await wired.ai.get_reply_in_progress(bob, room.id) is None  # mode off: the AI stays quiet...
    assert len(fake_llm.requests) == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"mode": "sometimes"}, "mode"),
        ({"instruction": "x" * 2001}, "instruction"),
        ({"model": "openai/not-offered"}, "model"),
    ],
)
async def test_bad_settings_are_refused_field_by_field_and_nothing_changes(runtime, wired, change, field):
    alice, _, room = await owner_and_member(runtime)
    wanted = {"mode": "mention", "instruction": "Be brief.", "model": None, **change}
    with pytest.raises(ValidationError) as refused:
        await wired.update_ai(alice, room.id, **wanted)
    assert list(refused.value.fields) == [field]
    assert (await wired.settings.get_ai_settings(alice, room.id)).settings.instruction == ""


async def test_only_the_owner_may_change_settings_or_see_usage(runtime, wired):
    alice, bob, room = await owner_and_member(runtime)
    mallory, _ = await sign_up(runtime, "mallory", "Mallory")
    secret = await runtime.services.rooms.create_room(alice, name="Secret", private=True)
    with pytest.raises(Forbidden):
        await wired.update_ai(bob, room.id, mode="off", instruction="", model=None)
    with pytest.raises(Forbidden):
        await wired.settings.list_ai_usage(bob, room.id)
    with pytest.raises(Forbidden):  # a public room they have not joined
        await wired.settings.get_ai_settings(mallory, room.id)
    with pytest.raises(NotFound):  # a private room they are not in does not exist for them
        await wired.update_ai(mallory, secret.id, mode="off", instruction="", model=None)
    assert (await wired.settings.get_ai_settings(alice, room.id)).settings.mode is AiMode.MENTION


async def test_regenerate_replaces_the_latest_reply_in_place_from_the_talk_before_it(runtime, wired, fake_llm):
    alice, bob, room = await owner_and_member(runtime)
    events = wired.events(room.id)
    fake_llm.push(Script(reply="First answer."), Script(reply="Better answer."))
    await wired.chat.post_message(alice, room.id, "@ai what is left?")
    await wired.settled(room.id)
    first = (await runtime.services.chat.list_messages(alice, room.id)).messages[-1]
    await wired.chat.post_message(bob, room.id, "thanks")  # after the reply: not part of the regenerated context

    await wired.ai.regenerate_reply(bob, room.id)
    with pytest.raises(Conflict):
        await wired.ai.regenerate_reply(alice, room.id)  # one at a time
    await wired.settled(room.id)

    started = [e for e in events if isinstance(e, AiReplyStarted)]
    assert started[-1].replaces == first.id
    updated = [e for e in events if isinstance(e, MessageUpdated)]
    assert [e.message_id for e in updated] == [first.id]
    assert isinstance(events[-1], AiReplyEnded) and events[-1].message_id == first.id
    page = (await runtime.services.chat.list_messages(alice, room.id)).messages
    assert [m.body for m in page] == ["@ai what is left?", "Better answer.", "thanks"]
    assert page[1].id == first.id and page[1].edited_at is not None
    sent = fake_llm.last_request.messages
    assert [m["content"] for m in sent[1:]] == ["Alice: @ai what is left?"]
    usage = await wired.settings.list_ai_usage(alice, room.id)
    assert [(u.model, u.replies) for u in usage] == [(MODEL, 2)]  # the replaced reply's usage is kept
    assert usage[0].completion_tokens == 4 and usage[0].cost_usd is None  # the fake model has no price


async def test_regenerate_needs_an_earlier_reply_and_a_participant(runtime, wired):
    alice, _, room = await owner_and_member(runtime)
    mallory, _ = await sign_up(runtime, "mallory", "Mallory")
    with pytest.raises(NotFound):
        await wired.ai.regenerate_reply(alice, room.id)
    with pytest.raises(Forbidden):
        await wired.ai.regenerate_reply(mallory, room.id)


async def test_a_reconnecting_view_gets_the_edits_and_deletions_made_while_it_was_away(runtime, wired, fake_llm):
    alice, bob, room = await owner_and_member(runtime)
    fake_llm.push(Script(reply="First answer."), Script(reply="Better answer."))
    await wired.chat.post_message(alice, room.id, "@ai what is left?")
    await wired.settled(room.id)
    doomed = await wired.chat.post_message(bob, room.id, "oops, wrong room")
    reply = (await wired.chat.list_messages(alice, room.id)).messages[-2]
    last_seen, away = doomed.id, datetime.now(UTC)
    assert await wired.chat.catch_up(alice, room.id, last_seen, away) == CatchUp(new=[], edited=[], deleted_ids=[])

    await wired.ai.regenerate_reply(bob, room.id)
    await wired.settled(room.id)
    await wired.chat.delete_message(bob, room.id, doomed.id)
    later = await wired.chat.post_message(alice, room.id, "while you were away")
    missed = await wired.chat.catch_up(alice, room.id, last_seen, away)
    assert [m.id for m in missed.new] == [later.id]
    assert [(m.id, m.body) for m in missed.edited] == [(reply.id, "Better answer.")]
    assert missed.edited[0].edited_at >= away
    assert missed.deleted_ids == [doomed.id]
    in_another_zone = away.astimezone(timezone(timedelta(hours=2)))  # the same moment
    assert await wired.chat.catch_up(alice, room.id, last_seen, in_another_zone) == missed
    assert (await wired.chat.catch_up(alice, room.id, later.id, datetime.now(UTC))).edited == []
    assert (await wired.chat.catch_up(alice, room.id, later.id)).deleted_ids == []  # no time: new messages only

    mallory, _ = await sign_up(runtime, "mallory", "Mallory")
    secret = await runtime.services.rooms.create_room(alice, name="Secret", private=True)
    with pytest.raises(NotFound):
        await wired.chat.catch_up(mallory, secret.id, 0, away)

    one_per_page = Chat(tx=SqlTransactor(runtime.engine), pubsub=wired.pubsub, max_message_chars=4000, page_size=1)
    assert await one_per_page.catch_up(alice, room.id, later.id, away) is not None
    await wired.chat.delete_message(alice, room.id, later.id)
    assert await one_per_page.catch_up(alice, room.id, later.id, away) is None  # more than a page: start again


async def test_after_a_gap_a_view_also_gets_what_was_written_since_whatever_its_id(runtime, wired):
    """With several processes a message saved late (or never told) can have an id below one the view
    shows: catching up with created_since finds it; deleted ones never come."""
    alice, bob, room = await owner_and_member(runtime)
    before = await wired.chat.post_message(alice, room.id, "before the gap")
    await asyncio.sleep(0.01)
    gap_since = datetime.now(UTC)
    never_told = await wired.chat.post_message(bob, room.id, "saved, then its process died")
    doomed = await wired.chat.post_message(bob, room.id, "deleted meanwhile")
    seen = await wired.chat.post_message(alice, room.id, "told, and shown")
    await wired.chat.delete_message(bob, room.id, doomed.id)
    assert (await wired.chat.catch_up(alice, room.id, seen.id)).new == []  # by id alone it is lost
    missed = await wired.chat.catch_up(alice, room.id, seen.id, created_since=gap_since)
    assert [m.id for m in missed.new] == [never_told.id, seen.id]  # the view keeps one copy of `seen`
    assert before.id not in [m.id for m in missed.new]

    mallory, _ = await sign_up(runtime, "mallory", "Mallory")
    secret = await runtime.services.rooms.create_room(alice, name="Secret", private=True)
    with pytest.raises(NotFound):
        await wired.chat.catch_up(mallory, secret.id, 0, created_since=gap_since)
    one_per_page = Chat(tx=SqlTransactor(runtime.engine), pubsub=wired.pubsub, max_message_chars=4000, page_size=1)
    assert await one_per_page.catch_up(alice, room.id, seen.id, created_since=gap_since) is None  # start again


async def test_deleting_a_room_ends_the_reply_being_written_there_without_saving_it(runtime, wired, fake_llm, caplog):
    alice, _, room = await owner_and_member(runtime)
    rooms = Rooms(
        tx=SqlTransactor(runtime.engine), pubsub=wired.pubsub, limits=RoomLimits(), on_deleted=wired.ai.drop_room
    )
    fake_llm.push(Script(tokens=500, tokens_per_second=50))
    await wired.ai.start_reply(alice, room.id)
    await fake_llm.wait_until_async(lambda: fake_llm.requests and fake_llm.last_request.tokens_sent >= 3)
    with caplog.at_level(logging.ERROR):
        await rooms.delete_room(alice, room.id, confirm_name="Launch")
        await wired.settled(room.id)  # the reply ended (the room's deletion stopped it)
    request = fake_llm.last_request
    await fake_llm.wait_until_async(lambda: request.done)
    assert request.disconnected_early  # the provider stops writing too
    assert "AI reply" not in caplog.text  # nothing tried to save into the deleted room


async def test_a_stopped_reply_records_counted_usage(runtime, wired, fake_llm):
    alice, _, room = await owner_and_member(runtime)
    fake_llm.push(Script(tokens=500, tokens_per_second=50))
    await wired.ai.start_reply(alice, room.id)
    await fake_llm.wait_until_async(lambda: fake_llm.requests and fake_llm.last_request.tokens_sent >= 5)
    await wired.ai.stop_reply(alice, room.id)
    (usage,) = await wired.settings.list_ai_usage(alice, room.id)
    assert usage.replies == 1 and usage.prompt_tokens > 0 and usage.completion_tokens >= 5
    with runtime.engine.connect() as conn:
        assert conn.execute(text("SELECT estimated FROM ai_usage")).scalar_one() in (True, 1)


def test_litellm_prices_known_models_and_not_unknown_ones():
    llm = LitellmClient()
    asyncio.run(llm.warm_up())
    cost = llm.cost("openai/gpt-4o-mini", 1_000_000, 1_000_000)
    assert cost is not None and 0.1 < cost < 10
    assert llm.cost("openai/fake-model", 10, 10) is None


def write_router(path: Path, base_url: str, **extra) -> Path:
    config = {
        "model_list": [
            {
                "model_name": "team-main",
                "litellm_params": {"model": "openai/fake-a", "api_base": base_url, "api_key": "k"},
            },
            {
                "model_name": "team-backup",
                "litellm_params": {"model": "openai/fake-b", "api_base": base_url, "api_key": "k"},
            },
        ],
        "router_settings": {"num_retries": 0},
        "litellm_settings": {"fallbacks": [{"team-main": ["team-backup"]}]},
        **extra,
    }
    path.write_text(yaml.safe_dump(config))
    return path


async def test_a_router_config_offers_its_models_and_falls_back_when_one_fails(runtime, fake_llm, tmp_path):
    llm = LitellmClient(router_config=write_router(tmp_path / "router.yaml", fake_llm.base_url))
    assert llm.router_models() == ("team-main", "team-backup")
    wired = Wired(runtime, llm, models=llm.router_models())
    alice, _, room = await owner_and_member(runtime)
    events = wired.events(room.id)
    fake_llm.push(Script(status=500), Script(reply="From the backup."))
    await wired.chat.post_message(alice, room.id, "@ai status?")
    await wired.settled(room.id)
    assert [r.model for r in fake_llm.requests] == ["fake-a", "fake-b"]
    assert any(isinstance(e, MessagePosted) and e.message.body == "From the backup." for e in events)
    assert events[-1].status == "complete"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("model_list: [", "not valid YAML"),
        ("fallbacks: []", "no model_list"),
        ("model_list: [{model_name: x}]", "needs"),
    ],
)
def test_a_bad_router_config_is_a_clear_settings_error(tmp_path, content, problem):
    path = tmp_path / "router.yaml"
    path.write_text(content)
    with pytest.raises(RouterConfigError, match=problem):
        read_router_config(path)
    with pytest.raises(RouterConfigError, match="cannot read"):
        read_router_config(tmp_path / "missing.yaml")


async def test_retries_take_a_failed_start_again(runtime, fake_llm):
    wired = Wired(runtime, LitellmClient(api_base=fake_llm.base_url, api_key="k", retries=1, read_timeout=LIVENESS_S))
    alice, _, room = await owner_and_member(runtime)
    events = wired.events(room.id)
    fake_llm.push(Script(status=500), Script(reply="Second time lucky."))
    await wired.ai.start_reply(alice, room.id)
    await wired.settled(room.id)
    assert len(fake_llm.requests) == 2 and events[-1].status == "complete"


async def test_whoever_asks_a_switched_off_or_busy_ai_alone_is_told_why(runtime, wired, fake_llm):
    alice, bob, room = await owner_and_member(runtime)
    events = wired.events(room.id)
    fake_llm.set_default(Script(tokens=60, tokens_per_second=60))
    await wired.chat.post_message(alice, room.id, "@ai first question")
    asked = await wired.chat.post_message(bob, room.id, "@ai me too")  # while the first reply runs
    await wired.settled(room.id)
    await wired.update_ai(alice, room.id, mode="off", instruction="", model=None)
    off = await wired.chat.post_message(bob, room.id, "@ai hello?")
    await wired.settled(room.id)
    notices = [e for e in events if isinstance(e, AiNotice)]
    assert [(n.participant_id, n.text) for n in notices] == [
        (asked.participant_id, "Assistant is still answering; ask again when it is done."),
        (off.participant_id, "Assistant is switched off in this room (the owner's settings)."),
    ]


async def test_regenerating_counts_against_the_askers_message_rate(runtime, fake_llm):
    limit = SharedRateLimiter(Rate(2, 0.01), MemoryRateStore(), "posts")
    wired = Wired(runtime, LitellmClient(api_base=fake_llm.base_url, api_key="k", retries=0), limit=limit)
    alice, _, room = await owner_and_member(runtime)
    fake_llm.set_default(Script(reply="ok"))
    await wired.ai.start_reply(alice, room.id)
    await wired.settled(room.id)
    for _ in range(2):
        await wired.ai.regenerate_reply(alice, room.id)
        await wired.settled(room.id)
    with pytest.raises(RateLimited, match="asking too fast"):
        await wired.ai.regenerate_reply(alice, room.id)

"""The pub/sub adapters' contract: memory://, PostgreSQL LISTEN/NOTIFY and Redis pub/sub pass the same
tests, against the real servers. Two BusPubSub on one channel are two processes (each its own origin,
connections and subscribers); the cross-process tests run on the two that cross processes."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from chatapp.app import build_runtime, migrate_database
from chatapp.domain.events import AiNotice, Event, FeedGap, MessageDeleted, ParticipantsChanged
from chatapp.domain.ports import PubSub
from chatapp.store.bus import GAP_MARGIN, BusPubSub
from chatapp.store.bus_postgres import PostgresTransport
from chatapp.store.bus_redis import RedisTransport
from chatapp.store.pubsub import InProcessPubSub
from tests.conftest import make_settings
from tests.timing import LIVENESS_S

KINDS = ["memory", pytest.param("postgres", marks=pytest.mark.postgres), pytest.param("redis", marks=pytest.mark.redis)]


@pytest.fixture(params=KINDS)
async def make_bus(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[BusMaker]:
    """Start a new "process's" bus of the chosen kind; all on one channel, stopped afterwards."""
    async for maker in _bus_maker(request, tmp_path):
        yield maker


@pytest.fixture(params=KINDS[1:])
async def make_cross_bus(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[BusMaker]:
    """The same, of the kinds that cross processes."""
    async for maker in _bus_maker(request, tmp_path):
        yield maker


class BusMaker:
    def __init__(self, kind: str, url: str | None, new: Callable[..., PubSub]) -> None:
        self.kind, self.url, self._new = kind, url, new
        self.started: list[PubSub] = []

    async def __call__(self, **how: float) -> Any:
        bus = self._new(**how)
        await bus.start()
        self.started.append(bus)
        return bus


async def _bus_maker(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[BusMaker]:
    channel = f"chatapp_t_{uuid.uuid4().hex[:10]}"
    if request.param == "postgres":
        pg_url: str = request.getfixturevalue("postgres_database")
        built = build_runtime(make_settings(tmp_path, pg_url, pubsub_url="memory://"))
        migrate_database(built)  # the bus_kept table
        built.engine.dispose()
        maker = BusMaker("postgres", pg_url, lambda **how: BusPubSub(PostgresTransport(pg_url, channel), **how))
    elif request.param == "redis":
        redis_url: str = request.getfixturevalue("redis_server")
        maker = BusMaker("redis", redis_url, lambda **how: BusPubSub(RedisTransport(redis_url, channel), **how))
    else:
        maker = BusMaker("memory", None, InProcessPubSub)
    yield maker
    for bus in maker.started:
        await bus.stop()


def gaps_in(heard: list[Event]) -> list[FeedGap]:
    return [event for event in heard if isinstance(event, FeedGap)]


def recorder(bus: PubSub, topic: str, **how: bool) -> list[Event]:
    heard: list[Event] = []
    bus.subscribe(topic, heard.append, **how)
    return heard


async def until(check: Callable[[], bool], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + LIVENESS_S
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {LIVENESS_S} s: {what}")
        await asyncio.sleep(0.01)


# --- every adapter ---------------------------------------------------------------------------------


async def test_subscribers_get_their_topics_events_in_order_and_wildcards_every_rooms(make_bus) -> None:
    bus = await make_bus()
    room1, every, other = recorder(bus, "room:1"), recorder(bus, "room:*"), recorder(bus, "room:2")
    events = [ParticipantsChanged(room_id=1), *[MessageDeleted(room_id=1, message_id=n) for n in range(50)]]
    for event in events:
        await bus.publish("room:1", event)
    await bus.settled()
    assert room1 == events and every == events and other == []
    assert await bus.healthy()


async def test_an_unsubscribed_handler_hears_no_more(make_bus) -> None:
    bus = await make_bus()
    heard: list[Event] = []
    stop = bus.subscribe("room:1", heard.append)
    await bus.publish("room:1", ParticipantsChanged(room_id=1))
    await bus.settled()
    stop()
    await bus.publish("room:1", ParticipantsChanged(room_id=1))
    await bus.settled()
    assert len(heard) == 1


async def test_local_only_subscribers_hear_what_this_process_published(make_bus) -> None:
    bus = await make_bus()
    here = recorder(bus, "room:*", local_only=True)
    await bus.publish("room:3", ParticipantsChanged(room_id=3))
    await bus.settled()
    assert here == [ParticipantsChanged(room_id=3)]


# --- across processes -------------------------------------------------------------------------------


async def test_another_process_hears_each_event_once_in_order_and_local_only_ones_stay_home(make_cross_bus) -> None:
    a, b = await make_cross_bus(), await make_cross_bus()
    on_a, on_b = recorder(a, "room:1"), recorder(b, "room:1")
    side_effects_on_b = recorder(b, "room:*", local_only=True)
    events = [MessageDeleted(room_id=1, message_id=n) for n in range(2000)]
    for event in events:
        await a.publish("room:1", event)
    await until(lambda: len(on_b) == len(events), "b heard all")
    await a.settled()
    assert on_b == events and on_a == events  # a's own come back from the bus and are skipped
    assert side_effects_on_b == []
    assert isinstance(a, BusPubSub) and a._seq < len(events) / 10  # packed: far fewer messages than events


async def test_an_event_too_big_for_one_message_arrives_whole(make_cross_bus) -> None:
    a, b = await make_cross_bus(), await make_cross_bus()
    on_b = recorder(b, "room:1")
    big = AiNotice(room_id=1, text="é" * 300_000)  # bigger than a NOTIFY and than Redis's packing limit
    small = ParticipantsChanged(room_id=1)
    await a.publish("room:1", small)
    await a.publish("room:1", big)
    await a.publish("room:1", small)
    await until(lambda: len(on_b) == 3, "b heard all three")
    assert on_b == [small, big, small]


async def test_a_lost_listening_connection_comes_back_and_every_followed_topic_reloads(make_cross_bus) -> None:
    a, b = await make_cross_bus(), await make_cross_bus()
    assert isinstance(b, BusPubSub)
    on_b, user_on_b = recorder(b, "room:7"), recorder(b, "user:3")
    await _kill_listener(make_cross_bus, b)
    await until(lambda: not b.listening, "b noticed")
    assert not await b.healthy()
    await until(lambda: b.listening, "b listens again")
    await until(lambda: bool(gaps_in(on_b) and gaps_in(user_on_b)), "b's topics were told of the gap")
    assert gaps_in(on_b)[0].room_id == 7 and gaps_in(user_on_b)[0].room_id is None
    await a.publish("room:7", ParticipantsChanged(room_id=7))
    await until(lambda: ParticipantsChanged(room_id=7) in on_b, "b hears again")
    assert await b.healthy()


async def test_a_skipped_number_is_a_gap(make_cross_bus) -> None:
    b = await make_cross_bus()
    assert isinstance(b, BusPubSub)
    on_b = recorder(b, "room:1")
    item = ["room:1", ParticipantsChanged(room_id=1).to_dict()]
    for seq in (1, 2, 4):  # a process whose message 3 got lost
        await b.transport.send(json.dumps({"o": "elsewhere", "s": seq, "e": [item]}))
    await until(lambda: len(on_b) == 4, "b heard three and a gap")
    assert on_b[:2] == [ParticipantsChanged(room_id=1)] * 2
    assert gaps_in(on_b[2:3]) and on_b[2].room_id == 1 and b.gaps == 1
    assert on_b[2].since is not None and on_b[2].since <= datetime.now(UTC) - GAP_MARGIN


async def test_a_beat_with_a_number_not_heard_is_a_gap(make_cross_bus) -> None:
    b = await make_cross_bus()
    on_b = recorder(b, "room:1")
    item = ["room:1", ParticipantsChanged(room_id=1).to_dict()]
    await b.transport.send(json.dumps({"o": "elsewhere", "s": 1, "e": [item]}))
    await b.transport.send(json.dumps({"o": "elsewhere", "b": 1}))  # alive, and b has everything
    await until(lambda: b.peers() == 1 and len(on_b) == 1, "b heard the message and the beat")
    await b.transport.send(json.dumps({"o": "elsewhere", "b": 2}))  # its message 2 never came
    await until(lambda: len(on_b) == 2, "b noticed")
    assert gaps_in(on_b) == [on_b[1]] and b.gaps == 1


async def test_a_process_gone_silent_is_a_gap_since_it_was_last_heard(make_cross_bus) -> None:
    """A process killed between saving and telling is never heard again: after peer_lost_after the
    others reload what was saved from a little before its last word."""
    b = await make_cross_bus(peer_lost_after_s=2.0)
    on_b = recorder(b, "room:1")
    item = ["room:1", ParticipantsChanged(room_id=1).to_dict()]
    await b.transport.send(json.dumps({"o": "doomed", "s": 1, "e": [item]}))
    await until(lambda: len(on_b) == 1, "b heard it")
    last_word = datetime.now(UTC)
    await until(lambda: len(on_b) == 2, "b took it for gone")
    (gap,) = gaps_in(on_b)
    assert gap.room_id == 1 and gap.since is not None
    assert last_word - GAP_MARGIN - timedelta(seconds=1) < gap.since <= last_word - GAP_MARGIN
    assert datetime.now(UTC) - last_word >= timedelta(seconds=1.5) and b.peers() == 0


async def test_live_processes_beat_and_one_that_stops_says_goodbye(make_cross_bus) -> None:
    a = await make_cross_bus(peer_lost_after_s=2.0)
    b = await make_cross_bus(peer_lost_after_s=2.0)
    await until(lambda: a.peers() == 1 and b.peers() == 1, "each heard the other beat")
    await asyncio.sleep(3)  # longer than peer_lost_after: idle, but beating
    assert a.peers() == b.peers() == 1 and a.gaps == b.gaps == 0
    await a.stop()
    make_cross_bus.started.remove(a)
    await until(lambda: b.peers() == 0, "b heard a leave")
    assert b.gaps == 0  # a stopped cleanly: nothing to reload


async def test_an_unreadable_message_or_an_unknown_event_is_skipped(make_cross_bus) -> None:
    b = await make_cross_bus()
    assert isinstance(b, BusPubSub)
    on_b = recorder(b, "room:1")
    await b.transport.send("not json")
    known = ParticipantsChanged(room_id=1).to_dict()
    await b.transport.send(
        json.dumps({"o": "newer", "s": 1, "e": [["room:1", {"kind": "from_the_future"}], ["room:1", known]]})
    )
    await until(lambda: len(on_b) == 1, "b heard the known event")
    assert on_b == [ParticipantsChanged(room_id=1)]


async def test_a_bus_that_cannot_connect_says_so_in_its_health(make_cross_bus) -> None:
    if make_cross_bus.kind == "redis":
        bus = BusPubSub(RedisTransport("redis://127.0.0.1:1/0"), start_wait_s=0.5)
    else:
        bus = BusPubSub(PostgresTransport("postgresql://postgres@127.0.0.1:1/nothing"), start_wait_s=0.5)
    await bus.start()
    try:
        assert not await bus.healthy()
        here = recorder(bus, "room:1")
        await bus.publish("room:1", ParticipantsChanged(room_id=1))  # this process still works
        await bus.settled()
        assert here == [ParticipantsChanged(room_id=1)]
    finally:
        await bus.stop()


async def _kill_listener(maker: BusMaker, bus: BusPubSub) -> None:
    """End the bus's listening connection from the server's side."""
    if maker.kind == "postgres":
        pid = bus.transport.listener_pid()  # type: ignore[attr-defined]
        engine = create_engine(maker.url)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
        engine.dispose()
    else:
        import redis.asyncio as redis

        client = redis.Redis.from_url(maker.url)
        try:
            name = bus.transport.listener_name  # type: ignore[attr-defined]
            ours = [c["id"] for c in await client.client_list() if c.get("name") == name]
            assert ours and await client.client_kill_filter(_id=ours[0])
        finally:
            await client.aclose()

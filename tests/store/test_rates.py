"""The rate stores' contract: this process's memory, PostgreSQL and Redis count the same buckets the
same way, against the real servers; two PostgreSQL or Redis stores are two processes sharing them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from chatapp.app import build_runtime, migrate_database
from chatapp.domain.limits import MemoryRateStore, Rate, RateLimited, RateStore, SharedRateLimiter
from chatapp.store.rates_postgres import PostgresRateStore
from chatapp.store.rates_redis import RedisRateStore
from tests.conftest import make_settings

KINDS = ["memory", pytest.param("postgres", marks=pytest.mark.postgres), pytest.param("redis", marks=pytest.mark.redis)]


@pytest.fixture(params=KINDS)
async def new_store(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[Callable[[], RateStore]]:
    """Make stores of the chosen kind; those of PostgreSQL or Redis share their buckets (processes)."""
    made: list = []
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_database")
        built = build_runtime(make_settings(tmp_path, url, pubsub_url="memory://"))
        migrate_database(built)
        built.engine.dispose()

        def new() -> RateStore:
            made.append(PostgresRateStore(url))
            return made[-1]
    elif request.param == "redis":
        redis_url = request.getfixturevalue("redis_server")

        def new() -> RateStore:
            made.append(RedisRateStore(redis_url))
            return made[-1]
    else:
        shared = MemoryRateStore()

        def new() -> RateStore:
            return shared  # one process: one memory

    yield new
    for store in made:
        if isinstance(store, PostgresRateStore):
            await store.close()


def unique() -> str:
    return f"t:{uuid.uuid4().hex}"


async def test_a_burst_then_refusals_saying_when_and_a_given_back_attempt(new_store) -> None:
    store, key, rate = new_store(), unique(), Rate(3, 0.5)
    assert [await store.take(key, rate) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = await store.take(key, rate)
    assert 1.5 < wait <= 2.0  # one token every 2 s
    assert 1.5 < await store.wait_needed(key, rate) <= 2.0
    await store.give_back(key, rate)
    assert await store.wait_needed(key, rate) == 0.0
    assert await store.take(key, rate) == 0.0
    assert await store.take(key, rate) > 0
    await store.forget(key)
    assert await store.take(key, rate) == 0.0
    assert await store.take(unique(), rate) == 0.0  # keys are apart


async def test_tokens_come_back_with_time(new_store) -> None:
    store, key, rate = new_store(), unique(), Rate(1, 5.0)  # one every 0.2 s
    assert await store.take(key, rate) == 0.0
    assert await store.take(key, rate) > 0
    await asyncio.sleep(0.25)
    assert await store.take(key, rate) == 0.0


async def test_a_simultaneous_burst_through_two_processes_passes_no_more_than_the_limit(new_store) -> None:
    first, second, key, rate = new_store(), new_store(), unique(), Rate(10, 0.001)
    results = await asyncio.gather(*(s.take(key, rate) for s in [first, second] * 25))
    assert sum(1 for wait in results if wait == 0.0) == 10


async def test_a_shared_limiter_says_when_to_try_again(new_store) -> None:
    limiter = SharedRateLimiter(Rate(1, 1 / 60), new_store(), "posts")
    key = unique()
    await limiter.hit(key, "Slow down.")
    with pytest.raises(RateLimited) as refused:
        await limiter.hit(key, "Slow down.")
    assert refused.value.message == "Slow down. Try again in 60 seconds." and 59 < refused.value.retry_after <= 60

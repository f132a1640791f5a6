"""Rate limits: token buckets kept in this process's memory.

A bucket holds up to `burst` tokens and gains `per_second` tokens a second; each attempt takes one.
An attempt on an empty bucket raises RateLimited with the seconds until a token is back, so the
message can say when to try again. An attempt is taken (reserved) before the work it limits starts,
never counted after it: checking first and counting later let a burst of simultaneous sign-ins all
pass the check (40 wrong passwords at once were all verified against a limit of 10).

Keys are whatever is limited ("sign-in user:alice", "post participant:42"); the least recently used
keys are dropped beyond `max_keys`, so memory stays bounded under a flood of distinct keys.

The app's limits (`Limits`: posts, sign-ins, sign-ups, joins) are SharedRateLimiters over a RateStore:
this process's memory with one process, PostgreSQL or Redis with several (store/rates_postgres.py,
store/rates_redis.py), so a limit holds the same whatever the number of processes. Each take is one
atomic step of the store (a statement, a script, or code without an await), which is what stops a
burst of simultaneous attempts from all passing. A RateLimiter alone stays for what belongs to one
connection (a room socket's frames).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from chatapp.domain.errors import DomainError


class RateLimited(DomainError):
    """Too many attempts; `retry_after` is how many seconds until the next one is allowed."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def when_to_retry(seconds: float) -> str:
    """A human "try again" phrase: "in 3 seconds", "in 2 minutes"."""
    if seconds < 60:
        whole = max(1, math.ceil(seconds))
        return f"in {whole} second{'s' if whole != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"in {minutes} minute{'s' if minutes != 1 else ''}"


@dataclass(frozen=True, slots=True)
class Rate:
    """`burst` attempts at once, then `per_second` attempts a second (e.g. 10 per 15 minutes:
    Rate(10, 10 / 900))."""

    burst: int
    per_second: float

    @classmethod
    def per_window(cls, attempts: int, seconds: float) -> Rate:
        """`attempts` per `seconds`, all of which may come at once."""
        return cls(attempts, attempts / seconds)


class RateLimiter:
    """Token buckets by key, for one kind of attempt."""

    def __init__(self, rate: Rate, *, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000) -> None:
        self.rate = rate
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)

    def _tokens(self, key: str, now: float) -> float:
        tokens, at = self._buckets.get(key, (float(self.rate.burst), now))
        return min(float(self.rate.burst), tokens + (now - at) * self.rate.per_second)

    def wait_needed(self, key: str) -> float:
        """Seconds until an attempt under `key` would be allowed (0 when it would be now)."""
        if self.rate.burst <= 0:
            return 0.0
        tokens = self._tokens(key, self._clock())
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate.per_second

    def hit(self, key: str, message: str) -> None:
        """Take one attempt under `key`; raises RateLimited("<message> Try again in …") when none is left."""
        if (wait := self.take(key)) > 0:
            raise RateLimited(f"{message} Try again {when_to_retry(wait)}.", wait)

    def take(self, key: str) -> float:
        """Take one attempt under `key` if there is one: 0.0, else the seconds until there is."""
        if self.rate.burst <= 0:
            return 0.0  # a limit of 0 switches it off
        now = self._clock()
        tokens = self._tokens(key, now)
        if tokens < 1:
            return (1 - tokens) / self.rate.per_second
        self._buckets[key] = (tokens - 1, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        return 0.0

    def refund(self, key: str) -> None:
        """Give back an attempt taken under `key` (e.g. once it turned out to be a successful sign-in)."""
        if self.rate.burst <= 0 or key not in self._buckets:
            return
        now = self._clock()
        self._buckets[key] = (min(float(self.rate.burst), self._tokens(key, now) + 1), now)

    def reset(self, key: str) -> None:
        """Forget the attempts under `key` (e.g. after a successful sign-in)."""
        self._buckets.pop(key, None)


class RateStore(Protocol):
    """Where the buckets of the app's limits are kept: one atomic step per call. `key` is already
    namespaced by the limiter ("posts:room:3:user:7")."""

    async def take(self, key: str, rate: Rate) -> float: ...  # 0.0: taken; else seconds until one is back
    async def give_back(self, key: str, rate: Rate) -> None: ...
    async def forget(self, key: str) -> None: ...
    async def wait_needed(self, key: str, rate: Rate) -> float: ...


class MemoryRateStore:
    """The buckets in this process's memory (one process: SQLite, or PostgreSQL without a second one)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._by_rate: dict[Rate, RateLimiter] = {}

    def _limiter(self, rate: Rate) -> RateLimiter:
        if (limiter := self._by_rate.get(rate)) is None:
            limiter = self._by_rate[rate] = RateLimiter(rate, clock=self._clock)
        return limiter

    async def take(self, key: str, rate: Rate) -> float:
        """Take one attempt (no await inside: atomic on the loop)."""
        return self._limiter(rate).take(key)

    async def give_back(self, key: str, rate: Rate) -> None:
        """Return one attempt."""
        self._limiter(rate).refund(key)

    async def forget(self, key: str) -> None:
        """Forget the key's attempts, whatever the rate."""
        for limiter in self._by_rate.values():
            limiter.reset(key)

    async def wait_needed(self, key: str, rate: Rate) -> float:
        """Seconds until an attempt would be allowed."""
        return self._limiter(rate).wait_needed(key)


class SharedRateLimiter:
    """One kind of the app's limits (`kind` names its keys in the store), kept in a RateStore."""

    def __init__(self, rate: Rate, store: RateStore, kind: str) -> None:
        self.rate, self._store, self._kind = rate, store, kind

    def _key(self, key: str) -> str:
        return f"{self._kind}:{key}"

    async def hit(self, key: str, message: str) -> None:
        """Take one attempt under `key`; raises RateLimited("<message> Try again in …") when none is left."""
        if self.rate.burst <= 0:
            return
        if (wait := await self._store.take(self._key(key), self.rate)) > 0:
            raise RateLimited(f"{message} Try again {when_to_retry(wait)}.", wait)

    async def refund(self, key: str) -> None:
        """Give back an attempt taken under `key`."""
        if self.rate.burst > 0:
            await self._store.give_back(self._key(key), self.rate)

    async def reset(self, key: str) -> None:
        """Forget the attempts under `key`."""
        if self.rate.burst > 0:
            await self._store.forget(self._key(key))

    async def wait_needed(self, key: str) -> float:
        """Seconds until an attempt under `key` would be allowed (0 when it would be now)."""
        if self.rate.burst <= 0:
            return 0.0
        return await self._store.wait_needed(self._key(key), self.rate)


def actor_key(room_id: int, actor) -> str:
    """The rate-limit key of a person in a room (a participant, before the database is asked)."""
    who = f"guest:{actor.guest_id}" if actor.guest_id is not None else f"user:{actor.user_id}"
    return f"room:{room_id}:{who}"


@dataclass
class Limits:
    """Every rate limit of the app, built from settings by the composition root."""

    posts: SharedRateLimiter  # per participant
    joins: SharedRateLimiter  # invite links followed, per IP
    sign_in_user: SharedRateLimiter  # failed sign-in attempts per username
    sign_in_ip: SharedRateLimiter  # failed sign-in attempts per IP
    sign_ups: SharedRateLimiter  # sign-up attempts per IP

    @classmethod
    def off(cls) -> Limits:
        """No limits (burst 0): for tools and tests that are not about limits."""
        none, store = Rate(0, 1.0), MemoryRateStore()
        return cls(*(SharedRateLimiter(none, store, kind) for kind in ("posts", "joins", "user", "ip", "sign-ups")))


async def reserve(*attempts: tuple[SharedRateLimiter, str | None], message: str) -> None:
    """Take one attempt from each (limiter, key) pair, all or none (a None key is not limited). Each
    take is atomic in its store, so a burst of simultaneous requests cannot all pass."""
    taken: list[tuple[SharedRateLimiter, str]] = []
    try:
        for limiter, key in attempts:
            if key is not None:
                await limiter.hit(key, message)
                taken.append((limiter, key))
    except RateLimited:
        for limiter, key in taken:
            await limiter.refund(key)
        raise

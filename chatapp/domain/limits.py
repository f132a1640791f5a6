"""Rate limits: token buckets kept in this process's memory.

A bucket holds up to `burst` tokens and gains `per_second` tokens a second; each attempt takes one.
An attempt on an empty bucket raises RateLimited with the seconds until a token is back, so the
message can say when to try again. An attempt is taken (reserved) before the work it limits starts,
never counted after it: checking first and counting later let a burst of simultaneous sign-ins all
pass the check (40 wrong passwords at once were all verified against a limit of 10).

Keys are whatever is limited ("sign-in user:alice", "post participant:42"); the least recently used
keys are dropped beyond `max_keys`, so memory stays bounded under a flood of distinct keys. Several
server processes each keep their own buckets (the limits are then per process; see
docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

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
        if self.rate.burst <= 0:
            return  # a limit of 0 switches it off
        now = self._clock()
        tokens = self._tokens(key, now)
        if tokens < 1:
            wait = (1 - tokens) / self.rate.per_second
            raise RateLimited(f"{message} Try again {when_to_retry(wait)}.", wait)
        self._buckets[key] = (tokens - 1, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)

    def refund(self, key: str) -> None:
        """Give back an attempt taken under `key` (e.g. once it turned out to be a successful sign-in)."""
        if self.rate.burst <= 0 or key not in self._buckets:
            return
        now = self._clock()
        self._buckets[key] = (min(float(self.rate.burst), self._tokens(key, now) + 1), now)

    def reset(self, key: str) -> None:
        """Forget the attempts under `key` (e.g. after a successful sign-in)."""
        self._buckets.pop(key, None)


def actor_key(room_id: int, actor) -> str:
    """The rate-limit key of a person in a room (a participant, before the database is asked)."""
    who = f"guest:{actor.guest_id}" if actor.guest_id is not None else f"user:{actor.user_id}"
    return f"room:{room_id}:{who}"


@dataclass
class Limits:
    """Every rate limit of the app, built from settings by the composition root."""

    posts: RateLimiter  # per participant
    joins: RateLimiter  # invite links followed, per IP
    sign_in_user: RateLimiter  # failed sign-in attempts per username
    sign_in_ip: RateLimiter  # failed sign-in attempts per IP
    sign_ups: RateLimiter  # sign-up attempts per IP

    @classmethod
    def off(cls) -> Limits:
        """No limits (burst 0): for tools and tests that are not about limits."""
        none = Rate(0, 1.0)
        return cls(*(RateLimiter(none) for _ in range(5)))


def reserve(*attempts: tuple[RateLimiter, str | None], message: str) -> None:
    """Take one attempt from each (limiter, key) pair, all or none (a None key is not limited).

    Call it before any await: on one event loop nothing else runs between the check and the take,
    so a burst of simultaneous requests cannot all pass a check made before any of them counted.
    """
    taken: list[tuple[RateLimiter, str]] = []
    try:
        for limiter, key in attempts:
            if key is not None:
                limiter.hit(key, message)
                taken.append((limiter, key))
    except RateLimited:
        for limiter, key in taken:
            limiter.refund(key)
        raise

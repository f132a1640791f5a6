"""Rate limits shared by every process, in Redis (domain/limits.py's RateStore), when the bus is Redis.

Each take is one Lua script run by Redis alone (atomic): refill the key's bucket by the time since its
last take (Redis's clock), take a token if there is one, and let the key expire once its bucket would
be full again. If Redis cannot be asked, the attempt is let through and the log says so.
"""

from __future__ import annotations

import logging
import math

import redis.asyncio as redis

from chatapp.domain.limits import Rate

log = logging.getLogger(__name__)

PREFIX = "chatapp:rate:"
# KEYS[1] the bucket; ARGV burst, per_second, taking (1: take one, 0: only look, -1: give one back).
# Returns the seconds to wait as a string (Lua numbers become integers in Redis replies).
_SCRIPT = """
local burst, rate, taking = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local saved = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(saved[1]) or burst
local at = tonumber(saved[2]) or now
tokens = math.min(burst, tokens + (now - at) * rate)
if taking == 0 then
  if tokens >= 1 then return '0' end
  return tostring((1 - tokens) / rate)
end
if taking == 1 and tokens < 1 then return tostring((1 - tokens) / rate) end
tokens = math.min(burst, tokens - taking)
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil((burst - tokens) / rate) + 1)
return '0'
"""


class RedisRateStore:
    """The token buckets in the Redis at `url`."""

    def __init__(self, url: str) -> None:
        self._client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
        self._script = self._client.register_script(_SCRIPT)

    async def _call(self, key: str, rate: Rate, taking: int) -> float:
        try:
            answer = await self._script(keys=[PREFIX + key], args=[rate.burst, rate.per_second, taking])
        except (redis.RedisError, OSError):
            log.warning("rate limits: Redis could not be asked; letting the attempt through", exc_info=True)
            return 0.0
        wait = float(answer.decode() if isinstance(answer, bytes) else answer)
        return wait if math.isfinite(wait) else 0.0

    async def take(self, key: str, rate: Rate) -> float:
        """Take one attempt: 0.0, else the seconds until one is back."""
        return await self._call(key, rate, 1)

    async def give_back(self, key: str, rate: Rate) -> None:
        """Return one attempt."""
        await self._call(key, rate, -1)

    async def forget(self, key: str) -> None:
        """Forget the key's attempts."""
        try:
            await self._client.delete(PREFIX + key)
        except (redis.RedisError, OSError):
            log.warning("rate limits: Redis could not be asked to forget a key", exc_info=True)

    async def wait_needed(self, key: str, rate: Rate) -> float:
        """Seconds until an attempt would be allowed."""
        return await self._call(key, rate, 0)

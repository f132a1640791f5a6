"""The bus over Redis pub/sub (store/bus.py does the rest), for a team that already runs Redis.

Redis pub/sub is fire and forget: a subscriber that is disconnected misses what was published
meanwhile, and one too slow is cut off by the server's output buffer limit. Both end the listening
connection, which store/bus.py treats as a gap: the rooms shown in this process reload from the
database. Redis allows messages of 512 MB: an event bigger than what a message packs goes alone, and
nothing is kept aside.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable

import redis.asyncio as redis

from chatapp.store.bus import CHANNEL

HEALTH_CHECK_S = 5  # the listening connection is pinged when idle this long: a dead one is noticed
MAX_PAYLOAD = 256_000  # bytes a message packs at most (many events share it)
CONNECT_TIMEOUT_S = 5


class RedisTransport:
    """PUBLISH/SUBSCRIBE on one channel of the Redis at `url`."""

    name = "redis"
    max_payload = MAX_PAYLOAD  # for packing: one event bigger than that goes alone
    hard_limit = False

    def __init__(self, url: str, channel: str = CHANNEL) -> None:
        self._url = url
        self._channel = channel
        self._sender: redis.Redis | None = None
        self._lock = asyncio.Lock()
        self.listener_name = f"chatapp-bus-{secrets.token_hex(4)}"  # what CLIENT LIST shows of the listener

    def _client(self, name: str = "chatapp-bus-send") -> redis.Redis:
        return redis.Redis.from_url(
            self._url,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            health_check_interval=HEALTH_CHECK_S,
            client_name=name,
        )

    async def listen(self, on_listening: Callable[[], None]) -> AsyncIterator[str]:
        """The channel's messages, on a connection of their own, until it fails."""
        client = self._client(self.listener_name)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self._channel)
            on_listening()
            while True:
                message = await pubsub.get_message(timeout=HEALTH_CHECK_S)
                if message is None:
                    await pubsub.ping()  # still there? (raises if not)
                elif message["type"] == "message":
                    data = message["data"]
                    yield data.decode() if isinstance(data, bytes) else data
        finally:
            await pubsub.aclose()
            await client.aclose()

    async def send(self, payload: str) -> None:
        """PUBLISH to the channel."""
        async with self._lock:
            if self._sender is None:
                self._sender = self._client()
        await self._sender.publish(self._channel, payload)

    async def keep(self, payload: str) -> str:
        """Never needed (no hard limit); refused, so the bus drops rather than loses silently."""
        raise RuntimeError("Redis messages are never too big to send")

    async def fetch(self, ref: str) -> str | None:
        """Nothing is ever kept."""
        return None

    async def close(self) -> None:
        """Close the sending connection."""
        if self._sender is not None:
            await self._sender.aclose()
            self._sender = None

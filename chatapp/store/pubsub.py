"""Pub/sub adapters. memory:// is in-process; a PostgreSQL LISTEN/NOTIFY adapter joins it later."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable

from chatapp.domain.events import Event
from chatapp.domain.ports import Handler

log = logging.getLogger(__name__)


class InProcessPubSub:
    """Delivers events to subscribers of this process, on the event loop, in publish order."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)

    async def publish(self, topic: str, event: Event) -> None:
        """Call every handler of the topic; one failing handler does not stop the others."""
        for handler in list(self._handlers.get(topic, ())):
            try:
                result = handler(event)
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                log.exception("pub/sub handler for %s failed", topic)

    def subscribe(self, topic: str, handler: Handler) -> Callable[[], None]:
        """Register a handler; returns the function that removes it."""
        self._handlers[topic].append(handler)

        def unsubscribe() -> None:
            handlers = self._handlers.get(topic)
            if handlers and handler in handlers:
                handlers.remove(handler)
                if not handlers:
                    del self._handlers[topic]

        return unsubscribe

"""The in-process pub/sub (memory://), which the adapters across processes (store/bus.py) build on.

Every subscriber has a queue of its own and a task that hands it the events one at a time, in the
order they were published (as encode/broadcaster does): `publish` returns once the event is in the
queues, so a poster never waits for a room's fan-out and a slow subscriber delays nobody but itself.
A topic ending in "*" subscribes to every topic that starts with what comes before it ("room:*").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from chatapp.domain.events import Event
from chatapp.domain.ports import Handler

log = logging.getLogger(__name__)

STOP_WAIT_S = 5.0  # how long stop() lets the subscribers finish what is queued


class _Subscription:
    """One subscriber: its queue and the task that drains it."""

    def __init__(self, topic: str, handler: Handler) -> None:
        self.topic = topic
        self.handler = handler
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None
        self.closed = False
        self.pending = 0  # events queued and not handled yet

    def put(self, event: Event) -> None:
        self.start()  # one made before the loop ran (at build time) starts with its first event
        self.pending += 1
        self.queue.put_nowait(event)

    def matches(self, topic: str) -> bool:
        if self.topic.endswith("*"):
            return topic.startswith(self.topic[:-1])
        return topic == self.topic

    def start(self) -> None:
        """Run the delivery task on the running loop (again, on a new queue, if the loop it ran on is
        gone: a CLI command or a test may run several loops one after another)."""
        loop = asyncio.get_running_loop()
        if self.closed or (self.task is not None and self.task.get_loop() is loop):
            return
        if self.task is not None:
            self.queue, self.pending = asyncio.Queue(), 0
        self.task = loop.create_task(self._deliver(), name=f"subscriber of {self.topic}")

    async def _deliver(self) -> None:
        while True:
            event = await self.queue.get()
            try:
                if event is None or self.closed:
                    return
                result = self.handler(event)
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                log.exception("pub/sub handler for %s failed", self.topic)
            finally:
                if event is not None:
                    self.pending -= 1
                self.queue.task_done()


class InProcessPubSub:
    """Delivers events to the subscribers of this process, each through its own queue, in publish order."""

    def __init__(self) -> None:
        self._subscriptions: list[_Subscription] = []
        self._running = False

    async def start(self) -> None:
        """Begin delivering (subscriptions made before, at build time, start now)."""
        self._running = True
        for subscription in self._subscriptions:
            subscription.start()

    async def stop(self) -> None:
        """Let the subscribers finish what is queued (up to STOP_WAIT_S), then end their tasks."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.settled(), STOP_WAIT_S)
        self._running = False
        subscriptions, self._subscriptions = self._subscriptions, []
        for subscription in subscriptions:
            subscription.closed = True
            if subscription.task is not None:
                subscription.task.cancel()
        await asyncio.gather(*(s.task for s in subscriptions if s.task is not None), return_exceptions=True)

    async def publish(self, topic: str, event: Event) -> None:
        """Queue the event for every subscriber of the topic; returns without waiting for them."""
        for subscription in self._subscriptions:
            if subscription.matches(topic):
                subscription.put(event)

    def subscribe(self, topic: str, handler: Handler, *, local_only: bool = False) -> Callable[[], None]:
        """Register a handler; returns the function that removes it (what is still queued for it is
        dropped; an event it is handling is finished). In one process every event is local."""
        subscription = _Subscription(topic, handler)
        self._subscriptions.append(subscription)
        if self._running or _loop_running():
            subscription.start()

        def unsubscribe() -> None:
            if subscription in self._subscriptions:
                self._subscriptions.remove(subscription)
            subscription.closed = True
            subscription.queue.put_nowait(None)

        return unsubscribe

    def topics(self) -> set[str]:
        """The topics somebody follows (a wildcard one as it was given: "room:*")."""
        return {s.topic for s in self._subscriptions}

    async def healthy(self) -> bool:
        """Always: nothing outside the process to lose."""
        return True

    async def settled(self) -> None:
        """Return once every event published so far (and what handling it published) was handled."""
        while busy := [s for s in self._subscriptions if s.pending]:
            for subscription in busy:
                subscription.start()
            await asyncio.gather(*(s.queue.join() for s in busy))


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True

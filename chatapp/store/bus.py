"""Pub/sub across processes: this process's subscribers get every event at once (as with memory://), and
the events also travel to the other processes through a transport (PostgreSQL LISTEN/NOTIFY in
store/bus_postgres.py, Redis pub/sub in store/bus_redis.py), whose subscribers get them too.

- Events are published after their transaction committed (the domain's rule), carry ids and small
  deltas (domain/events.py), and travel as JSON: `{"o": origin, "s": seq, "e": [[topic, event], ...]}`.
  One sender task packs what was published meanwhile into one message up to the transport's size
  limit, so a burst costs a few NOTIFYs instead of one per event (each NOTIFYing commit takes a
  database-wide lock). An event too big for a message goes by reference (`"r"`; the transport keeps
  it for a while).
- Every message of an origin (a process) is numbered. A receiver that sees a number skipped, or whose
  listening connection was lost and came back, may have missed events: it publishes a FeedGap on
  every topic its subscribers follow, and they reload from the database (the source of truth), so
  tabs and sockets lose nothing. A process's own messages come back to it and are skipped.
- A process with nothing to send beats every BEAT_S with its last number (so a lost last message is
  noticed too), and says goodbye when it stops. A process not heard for `peer_lost_after` seconds
  died, maybe between saving something and telling: that is a gap too. A FeedGap says since when
  news may be missing (the last time the silent side was heard, less GAP_MARGIN), so that views
  also fetch messages saved late with an id below one they already show.
- Subscribers with `local_only` (the AI deciding to answer, bots' outgoing webhooks) hear only what was
  published in this process: a side effect of an event happens once, where the event happened, while
  views everywhere show it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from chatapp.domain.events import Event, event_from_dict, gap_of
from chatapp.domain.ports import Handler
from chatapp.store.pubsub import InProcessPubSub

log = logging.getLogger(__name__)

CHANNEL = "chatapp"
MAX_OUTBOX = 10_000  # events waiting for a transport that is down; beyond, the oldest go (receivers see a gap)
RETRY_FIRST_S = 0.1  # reconnects wait 0.1, 0.2, 0.4 ... seconds, at most RETRY_MAX_S
RETRY_MAX_S = 2.0
SEND_TRIES = 8  # a message not sent after this many tries (~15 s) is dropped: the others see a gap and reload
START_WAIT_S = 5.0  # start() waits this long for the first LISTEN (the health check says if it failed)
STOP_FLUSH_S = 2.0  # stop() lets the sender send what is queued this long
BEAT_S = 1.0  # an idle process says this often that it is alive, and its last number
PEER_LOST_AFTER_S = 5.0  # the default of CHATAPP_BUS_PEER_LOST_AFTER: silent this long, a process is gone
# A gap's news is fetched from this much before the silent side was last heard: the processes' clocks
# differ a little, and a message is stamped when it is written, before its transaction commits.
GAP_MARGIN = timedelta(seconds=5)


class BusTransport(Protocol):
    """A way to the other processes: one channel every process listens to."""

    name: str
    max_payload: int  # bytes a message packs at most
    hard_limit: bool  # a bigger message cannot be sent at all (PostgreSQL): it goes by reference

    def listen(self, on_listening: Callable[[], None]) -> AsyncIterator[str]: ...  # until it fails (raises)
    async def send(self, payload: str) -> None: ...  # raises if it could not
    async def keep(self, payload: str) -> str: ...  # keep a payload too big to send; its reference
    async def fetch(self, ref: str) -> str | None: ...  # a kept payload (None once it is gone)
    async def close(self) -> None: ...


def _envelope(origin: str, seq: int, items: list[str]) -> str:
    return f'{{"o":{json.dumps(origin)},"s":{seq},"e":[{",".join(items)}]}}'


def _item(topic: str, event: Event) -> str:
    return json.dumps([topic, event.to_dict()], separators=(",", ":"), ensure_ascii=False)


@dataclass(slots=True)
class _Peer:
    """Another process as this one hears it: its last number, and when it was last heard."""

    seq: int
    heard: float  # the loop's clock
    heard_at: datetime  # the wall clock, for the gap's `since`


class BusPubSub:
    """The PubSub port across processes, over a BusTransport."""

    def __init__(
        self,
        transport: BusTransport,
        *,
        start_wait_s: float = START_WAIT_S,
        peer_lost_after_s: float = PEER_LOST_AFTER_S,
        beat_s: float = BEAT_S,
    ) -> None:
        self.transport = transport
        self._start_wait_s = start_wait_s
        self._peer_lost_after_s = peer_lost_after_s
        self._beat_s = beat_s
        self.origin = secrets.token_hex(8)
        self._views = InProcessPubSub()  # every event, from here and from the other processes
        self._here = InProcessPubSub()  # only this process's events (local_only subscribers)
        self._outbox: deque[str] = deque()
        self._wake = asyncio.Event()
        self._seq = 0
        self._peers: dict[str, _Peer] = {}
        self._last_heard_at = datetime.now(UTC)  # anything, our own messages too: the listener works
        self._tasks: list[asyncio.Task[None]] = []
        self._listened_once = False
        self.listening = False  # the health check: False while the listening connection is down
        self.gaps = 0  # how many times this process may have missed events (for tests and logs)

    async def start(self) -> None:
        """Deliver locally, and connect to the other processes (waiting up to START_WAIT_S for it)."""
        await self._views.start()
        await self._here.start()
        self._wake = asyncio.Event()
        ready = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._listen_forever(ready), name=f"{self.transport.name} bus listener"),
            asyncio.create_task(self._send_forever(), name=f"{self.transport.name} bus sender"),
            asyncio.create_task(self._watch_peers(), name=f"{self.transport.name} bus peers"),
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ready.wait(), self._start_wait_s)
        if not self.listening:
            log.error("the %s bus is not listening yet: other processes' news will wait", self.transport.name)

    async def stop(self) -> None:
        """Send what is queued (up to STOP_FLUSH_S), disconnect, and stop delivering."""
        deadline = asyncio.get_running_loop().time() + STOP_FLUSH_S
        while self._outbox and self._tasks and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        if self._tasks and not self._outbox:  # the others need not wait to learn it is gone
            with contextlib.suppress(Exception):
                await self.transport.send(f'{{"o":{json.dumps(self.origin)},"bye":{self._seq}}}')
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self.listening = False
        await self.transport.close()
        await self._views.stop()
        await self._here.stop()

    async def publish(self, topic: str, event: Event) -> None:
        """Queue the event for the other processes, and deliver it to this process's subscribers.

        The sender is woken first: woken after, it ran only once this process's subscribers were done
        (a room's fan-out to 1,000 tabs), and the other processes started theirs that much later
        (bench.scaleout: the second process's first tab got a message when the first's last did)."""
        if event.crosses_processes:
            self._outbox.append(_item(topic, event))
            if len(self._outbox) > MAX_OUTBOX:
                self._outbox.popleft()
                self._seq += 1  # a number nobody gets: the others know they missed something
            self._wake.set()
        await self._views.publish(topic, event)
        await self._here.publish(topic, event)

    def subscribe(self, topic: str, handler: Handler, *, local_only: bool = False) -> Callable[[], None]:
        """Register a handler of the topic's events (with `local_only`, only those published here)."""
        return (self._here if local_only else self._views).subscribe(topic, handler)

    async def settled(self) -> None:
        """Every event published so far in this process, and every one received, was handled."""
        await self._views.settled()
        await self._here.settled()

    async def healthy(self) -> bool:
        """Whether the bus hears the other processes (for /healthz)."""
        return self.listening

    # --- sending -------------------------------------------------------------------------------------

    async def _send_forever(self) -> None:
        failures = 0
        while True:
            if not self._outbox:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._beat_s)
                if not self._outbox:
                    await self._beat()
                    continue
            count, payload = self._next_message()
            try:
                if payload is None:  # one event bigger than a message: by reference
                    ref = await self.transport.keep(_envelope(self.origin, self._seq + 1, [self._outbox[0]]))
                    payload = f'{{"o":{json.dumps(self.origin)},"s":{self._seq + 1},"r":{json.dumps(ref)}}}'
                await self.transport.send(payload)
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                log.warning("the %s bus could not send (try %d)", self.transport.name, failures, exc_info=failures == 1)
                if failures < SEND_TRIES:
                    await asyncio.sleep(_backoff(failures))
                    continue
                log.error("the %s bus dropped %d events it could not send", self.transport.name, count)
            failures = 0
            self._seq += 1  # also for a dropped message: its number is skipped, so the others reload
            for _ in range(count):
                self._outbox.popleft()

    async def _beat(self) -> None:
        """Tell the others this process is alive, and the number of its last message."""
        try:
            await self.transport.send(f'{{"o":{json.dumps(self.origin)},"b":{self._seq}}}')
        except asyncio.CancelledError:
            raise
        except Exception:
            log.debug("the %s bus could not beat", self.transport.name, exc_info=True)

    def _next_message(self) -> tuple[int, str | None]:
        """How many queued events the next message takes, and the message (None: the first event alone
        is too big for the transport and goes by reference)."""
        limit = self.transport.max_payload
        taken: list[str] = []
        size = len(_envelope(self.origin, self._seq + 1, []).encode())
        for item in self._outbox:
            grown = size + len(item.encode()) + (1 if taken else 0)
            if grown > limit and (taken or self.transport.hard_limit):
                break
            taken.append(item)
            size = grown
            if len(taken) >= 500:
                break
        if not taken:
            return 1, None
        return len(taken), _envelope(self.origin, self._seq + 1, taken)

    # --- receiving -----------------------------------------------------------------------------------

    async def _listen_forever(self, ready: asyncio.Event) -> None:
        failures = 0
        while True:
            try:
                async for payload in self.transport.listen(lambda: self._now_listening(ready)):
                    failures = 0
                    await self._receive(payload)
                raise ConnectionError("the listening connection ended")
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                was_listening, self.listening = self.listening, False
                name = self.transport.name
                log.warning("the %s bus stopped listening (try %d)", name, failures, exc_info=was_listening)
                await asyncio.sleep(_backoff(failures))

    def _now_listening(self, ready: asyncio.Event) -> None:
        self.listening = True
        ready.set()
        if self._listened_once:  # what came while it was away is in the database, not in the bus
            log.info("the %s bus listens again: the rooms shown here reload what they missed", self.transport.name)
            # Everything since it went deaf is reloaded: the others' numbers start afresh (a process that
            # died meanwhile is covered too, its last words being later than that).
            self._peers.clear()
            asyncio.get_running_loop().create_task(self._gap(self._last_heard_at))
        self._listened_once = True

    async def _receive(self, payload: str) -> None:
        try:
            message = json.loads(payload)
            origin = message["o"]
            seq = message["s"] if "s" in message else message["b"] if "b" in message else message["bye"]
        except (ValueError, KeyError, TypeError):
            log.warning("the %s bus got a message it cannot read", self.transport.name)
            return
        if not isinstance(seq, int):
            log.warning("the %s bus got a message it cannot read", self.transport.name)
            return
        heard_at = self._last_heard_at = datetime.now(UTC)
        if origin == self.origin:
            return
        peer = self._peers.get(origin)
        if "s" not in message:  # a beat or a goodbye: the number of its last message
            if "bye" in message:
                self._peers.pop(origin, None)
            else:
                self._peers[origin] = _Peer(seq, asyncio.get_running_loop().time(), heard_at)
            if peer is not None and seq > peer.seq:  # its last message never came
                await self._gap(peer.heard_at)
            return
        self._peers[origin] = _Peer(seq, asyncio.get_running_loop().time(), heard_at)
        if peer is not None and seq != peer.seq + 1:
            await self._gap(peer.heard_at)
        if "r" in message:
            kept = await self.transport.fetch(message["r"])
            if kept is None:
                await self._gap(peer.heard_at if peer else heard_at)
                return
            message = json.loads(kept)
        for topic, data in message.get("e", ()):
            try:
                event = event_from_dict(data)
            except (ValueError, TypeError):  # a newer process's event this one does not know
                log.warning("the %s bus got an event it does not know: %r", self.transport.name, data.get("kind"))
                continue
            await self._views.publish(topic, event)

    async def _watch_peers(self) -> None:
        """A process silent for peer_lost_after seconds (while this one listens) is gone: what it saved
        last may never have been told."""
        while True:
            await asyncio.sleep(self._beat_s)
            if not self.listening:
                continue
            now = asyncio.get_running_loop().time()
            for origin, peer in list(self._peers.items()):
                if now - peer.heard > self._peer_lost_after_s:
                    del self._peers[origin]
                    log.info("the %s bus lost a process (not heard for %.0f s)", self.transport.name, now - peer.heard)
                    await self._gap(peer.heard_at)

    async def _gap(self, since: datetime) -> None:
        """Tell every topic followed here that it may have missed news saved from `since` on."""
        self.gaps += 1
        for topic in self._views.topics():
            await self._views.publish(topic, gap_of(topic, since - GAP_MARGIN))

    def peers(self) -> int:
        """How many other processes this one hears (for tests and logs)."""
        return len(self._peers)


def _backoff(failures: int) -> float:
    return min(RETRY_MAX_S, RETRY_FIRST_S * 2 ** (failures - 1))

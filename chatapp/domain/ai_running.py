"""One AI reply per room across every process: the running_replies row of a room is its reply being
written, whichever process writes it.

Starting a reply adds the row (a second start, here or elsewhere, finds it: Conflict). The writing
process beats every BEAT_S with the text so far; the row goes in the transaction that saves the reply.
A row silent for `lost_after` seconds belongs to a process that died (killed, its machine gone): any
process then saves its text as an interrupted reply, tells the room, and the room can ask again. Every
process sweeps for such rows every `lost_after / 3` seconds, and a start that finds one takes over.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from chatapp.domain.ai_models import ReplyInProgress, ReplyRecord, RunningReplyRecord
from chatapp.domain.errors import AlreadyExists, Conflict
from chatapp.domain.events import AiReplyEnded, MessagePosted, room_topic
from chatapp.domain.models import Message, MessageStatus
from chatapp.domain.ports import Clock, PubSub, Transactor, UnitOfWork

log = logging.getLogger(__name__)

BEAT_S = 2.0  # how often the writing process says it is alive (with the text so far)
LOST_AFTER_S = 15.0  # default: silent this long, a reply's process is taken for dead


@dataclass(frozen=True, slots=True)
class _Lost:
    record: RunningReplyRecord
    message: Message | None


class RunningReplies:
    """The rows of the replies being written: claims, beats, and what is left of dead processes."""

    def __init__(
        self, *, tx: Transactor, pubsub: PubSub, clock: Clock, origin: str, ai_name: str, lost_after: float
    ) -> None:
        self._tx, self._pubsub, self._clock = tx, pubsub, clock
        self.origin = origin
        self._ai_name = ai_name
        self.lost_after = lost_after
        self._sweeper: asyncio.Task[None] | None = None

    async def claim(self, room_id: int, reply_id: str, replaces_id: int | None, busy: str) -> None:
        """Take the room for a new reply; Conflict(busy) when a live one runs in any process."""
        now = self._clock()
        record = RunningReplyRecord(room_id, reply_id, self.origin, replaces_id, "", now, now)

        def work(uow: UnitOfWork) -> _Lost | None:
            existing = uow.running_replies.get(room_id)
            lost = None
            if existing is not None:
                if not self._is_lost(existing, now):
                    raise Conflict(busy)
                lost = self._save_lost(uow, existing, now)
            uow.running_replies.add(record)
            return lost

        try:
            lost = await self._tx.run(work, write=True)
        except AlreadyExists:  # another process started one at the same moment
            raise Conflict(busy) from None
        if lost is not None:
            await self._tell_lost(lost)

    async def beat(self, room_id: int, reply_id: str, text: str) -> bool:
        """The writer is alive, with this text so far; False if its row is gone (taken for dead)."""
        now = self._clock()
        return await self._tx.run(lambda uow: uow.running_replies.beat(room_id, reply_id, text, now), write=True)

    async def in_progress(self, room_id: int) -> ReplyInProgress | None:
        """The room's reply being written by any process, as of its last beat."""
        record = await self._tx.run(lambda uow: uow.running_replies.get(room_id))
        if record is None or self._is_lost(record, self._clock()):
            return None
        return ReplyInProgress(record.reply_id, room_id, record.text, record.replaces_id)

    async def sweep(self, running_here: set[str]) -> int:
        """Save every reply whose process went silent as interrupted; how many there were."""
        now = self._clock()

        def work(uow: UnitOfWork) -> list[_Lost]:
            silent = uow.running_replies.silent_since(now - timedelta(seconds=self.lost_after))
            return [self._save_lost(uow, r, now) for r in silent if r.reply_id not in running_here]

        lost = await self._tx.run(work, write=True)
        for each in lost:
            await self._tell_lost(each)
        return len(lost)

    def start_sweeping(self, running_here) -> None:
        """Sweep every lost_after / 3 seconds until stop_sweeping (`running_here()`: this process's ids)."""

        async def sweep_forever() -> None:
            while True:
                await asyncio.sleep(self.lost_after / 3)
                try:
                    await self.sweep(running_here())
                except Exception:
                    log.warning("sweeping for lost AI replies failed", exc_info=True)

        if self._sweeper is None:
            self._sweeper = asyncio.create_task(sweep_forever(), name="sweep for lost AI replies")

    async def stop_sweeping(self) -> None:
        """End the sweeping task (the server stops)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
            self._sweeper = None

    def _is_lost(self, record: RunningReplyRecord, now: datetime) -> bool:
        return record.beat_at < now - timedelta(seconds=self.lost_after)

    def _save_lost(self, uow: UnitOfWork, record: RunningReplyRecord, now: datetime) -> _Lost:
        """Free the room and keep what the dead process had written (a regenerate keeps the old reply)."""
        uow.running_replies.remove(record.room_id, record.reply_id)
        ai = uow.participants.ai_of(record.room_id)
        message = None
        if record.text.strip() and record.replaces_id is None and ai is not None:
            latency = round((now - record.started_at).total_seconds() * 1000)
            saved = ReplyRecord(MessageStatus.INTERRUPTED, "", None, None, latency)
            message = uow.messages.add_reply(
                room_id=record.room_id, participant_id=ai.id, body=record.text, now=now, record=saved
            )
        return _Lost(record, message)

    async def _tell_lost(self, lost: _Lost) -> None:
        room_id = lost.record.room_id
        topic = room_topic(room_id)
        if lost.message is not None:
            await self._pubsub.publish(topic, MessagePosted(room_id, lost.message.id, message=lost.message))
        notice = f"{self._ai_name}'s reply was cut off: the server writing it stopped. Ask again."
        ended = AiReplyEnded(
            room_id=room_id,
            reply_id=lost.record.reply_id,
            message_id=lost.message.id if lost.message else None,
            status=MessageStatus.INTERRUPTED.value,
            notice=notice,
        )
        await self._pubsub.publish(topic, ended)

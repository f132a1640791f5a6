"""Writing one AI reply: build the prompt from the room, stream the model's words to the room as they
come (coalesced: at most one delta event per FLUSH_INTERVAL_S, carrying only the new text), and save it
once at the end with the model, the provider's token usage and the latency. A stopped or failed reply
keeps its partial text. The reply is a task of the AiReplies service (ai.py), not of the tab that asked.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from chatapp.domain.ai_models import ReplyInProgress, ReplyRecord, UsageRecord
from chatapp.domain.ai_prompt import Prompt, RoomContext, build_prompt
from chatapp.domain.ai_running import BEAT_S, RunningReplies
from chatapp.domain.ai_settings import AiSettings
from chatapp.domain.errors import LlmError, no_model_configured
from chatapp.domain.events import (
    AiReplyDelta,
    AiReplyEnded,
    AiReplyStarted,
    Event,
    MessagePosted,
    MessageUpdated,
    room_topic,
)
from chatapp.domain.models import Message, MessageStatus
from chatapp.domain.participants import place_in_people_list
from chatapp.domain.ports import Clock, LlmClient, LlmStream, PubSub, Transactor, UnitOfWork
from chatapp.domain.rooms import ai_participant
from chatapp.domain.validation import clean_text, drop_control_characters

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 0.1  # at most ~10 delta events a second per reply
HISTORY_MESSAGES = 200  # the newest messages considered for the context (then trimmed to the token budget)


@dataclass
class RunningReply:
    """A reply in progress; `text` is everything so far (a page opened mid-reply shows it)."""

    reply_id: str
    room_id: int
    replaces: Message | None = None  # the reply being regenerated
    text: str = ""
    stop_requested: bool = False
    task: asyncio.Task | None = field(default=None, repr=False)

    def snapshot(self) -> ReplyInProgress:
        """The reply as it is now, frozen."""
        replaces = self.replaces.id if self.replaces else None
        return ReplyInProgress(reply_id=self.reply_id, room_id=self.room_id, text=self.text, replaces_id=replaces)


@dataclass(frozen=True, slots=True)
class _Request:
    prompt: Prompt
    model: str
    ai_participant_id: int


@dataclass
class _Outcome:
    """How the reply went, as far as it went."""

    status: MessageStatus = MessageStatus.COMPLETE
    notice: str = ""
    request: _Request | None = None
    stream: LlmStream | None = None
    unsent: str = ""  # text streamed but not yet published


@dataclass(frozen=True)
class ReplyWriter:
    """Writes replies: everything one needs from the room, the model and the bus."""

    tx: Transactor
    pubsub: PubSub
    llm: LlmClient
    ai_name: str
    settings: AiSettings
    context_tokens: int
    timeout: float
    clock: Clock
    rows: RunningReplies  # the room's row of the reply (ai_running.py): beats, and goes when it is saved

    async def write(self, reply: RunningReply, release: Callable[[], object]) -> None:
        """Write the reply to its end (done, stopped, failed); `release` frees the room for the next one
        as soon as the model is done with, before the reply is saved."""
        started = time.monotonic()
        outcome = _Outcome()
        beating = asyncio.create_task(self._beat(reply), name=f"AI reply beat in room {reply.room_id}")
        try:
            replaces = reply.replaces.id if reply.replaces else None
            await self._publish(
                reply, AiReplyStarted(room_id=reply.room_id, reply_id=reply.reply_id, replaces=replaces)
            )
            outcome.request = await self._request(reply)
            await self._stream(reply, outcome)
        except asyncio.CancelledError:
            if not reply.stop_requested:
                raise  # shutting down: nothing to save
            outcome.status = MessageStatus.STOPPED
        except TimeoutError:
            outcome.status, outcome.notice = MessageStatus.FAILED, f"{self.ai_name} took too long and was stopped."
        except LlmError as exc:
            outcome.status, outcome.notice = MessageStatus.FAILED, exc.message
        except Exception:
            log.exception("AI reply failed")
            outcome.status = MessageStatus.FAILED
            outcome.notice = f"{self.ai_name} could not answer because of an internal error."
        finally:
            beating.cancel()
            try:
                if outcome.stream is not None:
                    await asyncio.shield(_close(outcome.stream))
            finally:
                release()  # also when cancelled again meanwhile: the room must not stay taken
        await self._end(reply, outcome, started)

    async def _beat(self, reply: RunningReply) -> None:
        """Say every BEAT_S that this process still writes the reply, with its text so far (what another
        process shows a page opened now, and saves if this process dies)."""
        while True:
            await asyncio.sleep(BEAT_S)
            try:
                if not await self.rows.beat(reply.room_id, reply.reply_id, reply.text):
                    log.warning("the AI reply in room %d was taken for lost while being written", reply.room_id)
                    return
            except Exception:
                log.warning("an AI reply's beat failed", exc_info=True)

    async def _stream(self, reply: RunningReply, outcome: _Outcome) -> None:
        """Stream the model's words into the reply; the first text goes out at once, then one delta per
        interval."""
        assert outcome.request is not None
        request = outcome.request
        async with asyncio.timeout(self.timeout):
            outcome.stream = await self.llm.stream(model=request.model, messages=request.prompt.as_messages())
            flushed_at = float("-inf")
            async for delta in outcome.stream:
                delta = drop_control_characters(delta)  # provider text is as untrusted as people's
                reply.text += delta
                outcome.unsent += delta
                if time.monotonic() - flushed_at >= FLUSH_INTERVAL_S:
                    await self._publish_delta(reply, outcome.unsent)
                    outcome.unsent, flushed_at = "", time.monotonic()

    async def _end(self, reply: RunningReply, outcome: _Outcome, started: float) -> None:
        """Publish the last text, save the reply and say it ended; the room hears it ended even when
        saving fails."""
        try:
            if outcome.unsent:
                await self._publish_delta(reply, outcome.unsent)
            await self._finish(reply, outcome, started)
        except Exception:
            log.exception("saving an AI reply failed")
            await self._free_the_room(reply)
            failed = AiReplyEnded(
                room_id=reply.room_id,
                reply_id=reply.reply_id,
                message_id=None,
                status=MessageStatus.FAILED.value,
                notice=f"{self.ai_name}'s reply could not be saved.",
            )
            await self._publish(reply, failed)

    async def _free_the_room(self, reply: RunningReply) -> None:
        """The reply is over without being saved: its row goes (if even that fails, the sweep of lost
        replies frees the room within CHATAPP_AI_REPLY_LOST_AFTER)."""
        try:
            await self.tx.run(lambda uow: uow.running_replies.remove(reply.room_id, reply.reply_id), write=True)
        except Exception:
            log.warning("freeing the room of an AI reply failed", exc_info=True)

    async def _publish(self, reply: RunningReply, event: Event) -> None:
        await self.pubsub.publish(room_topic(reply.room_id), event)

    async def _publish_delta(self, reply: RunningReply, text: str) -> None:
        await self._publish(reply, AiReplyDelta(room_id=reply.room_id, reply_id=reply.reply_id, text=text))

    async def _request(self, reply: RunningReply) -> _Request:
        """Load the room, its AI participant and history; build the prompt."""
        room_id = reply.room_id
        before_id = reply.replaces.id if reply.replaces else None  # a regenerated reply sees what came before

        def load(uow: UnitOfWork):  # a read: the SQLite writer stays free for the room's messages
            room = uow.rooms.get(room_id)
            settings = uow.rooms.ai_settings(room_id)
            ai = ai_participant(uow, room_id)
            people = [p.display_name for p in sorted(uow.participants.list(room_id), key=place_in_people_list)]
            history = list(reversed(uow.messages.newest_before(room_id, before_id, HISTORY_MESSAGES)))
            return room, settings, ai, people, history

        room, settings, ai, people, history = await self.tx.run(load)
        model = self.settings.model_for(settings)
        if not model:
            raise no_model_configured()  # before counting tokens: that would import litellm for nothing
        context = RoomContext(
            ai_name=self.ai_name,
            room_name=room.name,
            room_topic=room.topic,
            instruction=settings.instruction,
            present=people,
            today=self.clock().date(),
            ai_participant_id=ai.id,
        )

        def count(text: str) -> int:
            return self.llm.count_tokens(model, text)

        prompt = await asyncio.to_thread(build_prompt, context, history, budget=self.context_tokens, count=count)
        return _Request(prompt=prompt, model=model, ai_participant_id=ai.id)

    async def _usage(self, request: _Request, stream: LlmStream | None, text: str) -> UsageRecord | None:
        """The reply's usage as the provider reported it, else counted here (a stopped stream never
        gets the provider's figures); None when nothing was asked of the provider."""
        if stream is None:
            return None
        model = request.model
        if stream.usage is not None:
            prompt, completion, estimated = stream.usage.prompt_tokens, stream.usage.completion_tokens, False
        else:
            completion = await asyncio.to_thread(self.llm.count_tokens, model, text) if text else 0
            prompt, estimated = request.prompt.tokens, True
        cost = self.llm.cost(model, prompt, completion)
        return UsageRecord(model, prompt, completion, cost, estimated)

    async def _finish(self, reply: RunningReply, outcome: _Outcome, started: float) -> None:
        """Save the reply once (if it has any text) with its usage, then tell the room it ended."""
        message: Message | None = None
        request = outcome.request
        usage = await self._usage(request, outcome.stream, reply.text) if request is not None else None
        if request is None or not (reply.text or usage is not None):
            await self._free_the_room(reply)
        else:
            reported = usage is not None and not usage.estimated
            record = ReplyRecord(
                status=outcome.status,
                model=request.model,
                prompt_tokens=usage.prompt_tokens if usage and reported else None,
                completion_tokens=usage.completion_tokens if usage and reported else None,
                latency_ms=round((time.monotonic() - started) * 1000),
            )
            message = await self.tx.run(lambda uow: self._save(uow, reply, request, record, usage), write=True)
        if message is not None and reply.replaces is not None:  # (None: the old reply was deleted meanwhile)
            await self._publish(reply, MessageUpdated(room_id=reply.room_id, message_id=message.id, message=message))
        elif message is not None:
            await self._publish(reply, MessagePosted(room_id=reply.room_id, message_id=message.id, message=message))
        ended = AiReplyEnded(
            room_id=reply.room_id,
            reply_id=reply.reply_id,
            message_id=message.id if message else None,
            status=outcome.status.value,
            notice=outcome.notice,
        )
        await self._publish(reply, ended)

    def _save(
        self, uow: UnitOfWork, reply: RunningReply, request: _Request, record: ReplyRecord, usage: UsageRecord | None
    ) -> Message | None:
        now = self.clock()
        uow.running_replies.remove(reply.room_id, reply.reply_id)  # the room is free with the reply saved
        if usage is not None:
            uow.ai_usage.record(room_id=reply.room_id, usage=usage, now=now)
        body = clean_text(reply.text)
        if not body:
            return None
        if reply.replaces is not None:
            return uow.messages.replace_reply(reply.replaces.id, body=body, now=now, record=record)
        return uow.messages.add_reply(
            room_id=reply.room_id, participant_id=request.ai_participant_id, body=body, now=now, record=record
        )


async def _close(stream: LlmStream) -> None:
    try:
        await stream.aclose()
    except Exception:  # closing a broken stream may fail too; the reply is over either way
        log.debug("closing the AI stream failed", exc_info=True)

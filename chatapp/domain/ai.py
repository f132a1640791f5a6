"""The AI participant's replies: one task per room, owned by the room, streamed to it as events.

A reply is a task of this service, not of the tab that asked: closing that tab does not stop it; any
participant who may post can. Text is published as it grows, coalesced (at most one delta event per
FLUSH_INTERVAL_S, carrying only the new text), and the reply is saved once at the end, with the
model, the provider's token usage and the latency; stopped or failed replies keep their partial text.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from chatapp.domain.ai_prompt import Prompt, RoomContext, build_prompt
from chatapp.domain.ai_settings import AiSettings
from chatapp.domain.errors import Conflict, Forbidden, LlmError, NotFound, no_model_configured
from chatapp.domain.events import (
    EVERY_ROOM,
    AiNotice,
    AiReplyDelta,
    AiReplyEnded,
    AiReplyStarted,
    Event,
    MessagePosted,
    MessageUpdated,
    RoomDeleted,
    RoomSettingsChanged,
    room_topic,
)
from chatapp.domain.limits import RateLimiter, actor_key
from chatapp.domain.models import (
    Actor,
    AiMode,
    Message,
    MessageStatus,
    Participant,
    ParticipantKind,
    ParticipantState,
    ReplyInProgress,
    ReplyRecord,
    Role,
    Room,
    UsageRecord,
)
from chatapp.domain.ports import Clock, LlmClient, LlmStream, PubSub, Transactor, UnitOfWork, utc_now
from chatapp.domain.rooms import ai_participant, place_in_people_list, require_member, room_access
from chatapp.domain.validation import clean_text, drop_control_characters

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 0.1  # at most ~10 delta events a second per reply
HISTORY_MESSAGES = 200  # the newest messages considered for the context (then trimmed to the token budget)
GUESTS_MAY_NOT_ASK = "The room's owner has not allowed guests to ask the AI here."
_MENTION = re.compile(r"(?<![\w@])@ai\b", re.IGNORECASE)


def mentions_ai(text: str) -> bool:
    """True when the text mentions the AI participant as @ai."""
    return _MENTION.search(text) is not None


@dataclass
class _RunningReply:
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


class AiReplies:
    """Starts, streams, stops and saves the AI participant's replies."""

    def __init__(
        self,
        *,
        tx: Transactor,
        pubsub: PubSub,
        llm: LlmClient,
        ai_name: str,
        settings: AiSettings,
        context_tokens: int,
        timeout: float,
        clock: Clock = utc_now,
        limit: RateLimiter | None = None,
    ) -> None:
        self._limit = limit  # regenerating costs like asking: it takes from the asker's message rate
        self._tx = tx
        self._pubsub = pubsub
        self._llm = llm
        self._ai_name = ai_name
        self._settings = settings
        self._context_tokens = context_tokens
        self._timeout = timeout
        self._clock = clock
        self._running: dict[int, _RunningReply] = {}
        # room -> its AI mode, as last read; forgotten when the room's settings change. Most messages
        # mention nobody in a room that answers mentions only: they are decided without a read.
        self._modes: dict[int, AiMode] = {}

    def subscribe(self) -> Callable[[], None]:
        """Decide on every message posted in any room whether to answer it (see _on_message_posted)."""
        return self._pubsub.subscribe(EVERY_ROOM, self._on_message_posted)

    async def _on_message_posted(self, event: Event) -> None:
        """A person's message was saved: start a reply if the room's AI mode asks for one. When it
        cannot start (switched off, busy, not allowed for guests), the asker alone is told why."""
        if isinstance(event, RoomSettingsChanged | RoomDeleted):
            self._modes.pop(event.room_id, None)
        if not isinstance(event, MessagePosted) or not self._may_ask(event):
            return
        asked = await self._tx.run(lambda uow: _what_was_asked(uow, event))
        if asked is None:
            return
        message, room, author = asked
        self._modes[room.id] = room.ai_mode
        mentioned = mentions_ai(message.body)
        if room.ai_mode is AiMode.OFF:
            if mentioned:
                await self._tell(message, f"{self._ai_name} is switched off in this room (the owner's settings).")
            return
        if not (room.ai_mode is AiMode.EVERY or mentioned):
            return
        if author.role is Role.GUEST and not room.guests_can_use_ai:
            if mentioned:  # mode "every": a guest's message that may not ask simply gets no answer
                await self._tell(message, GUESTS_MAY_NOT_ASK)
            return
        try:
            self._launch(room.id, replaces=None)
        except Conflict:
            await self._tell(message, f"{self._ai_name} is still answering; ask again when it is done.")

    def _may_ask(self, event: MessagePosted) -> bool:
        """False when the message surely asks nothing (the AI's own, or no mention in a room whose AI
        answers mentions only or is off): then nothing is read."""
        message = event.message
        if message is None:
            return True
        if message.author_kind is ParticipantKind.AI:
            return False
        mode = self._modes.get(event.room_id)
        return mode is None or mode is AiMode.EVERY or mentions_ai(message.body)

    async def _tell(self, message: Message, text: str) -> None:
        notice = AiNotice(room_id=message.room_id, text=text, participant_id=message.participant_id)
        await self._pubsub.publish(room_topic(message.room_id), notice)

    def drop_room(self, room_id: int) -> None:
        """The room was deleted: a reply still being written there ends without being saved."""
        reply = self._running.get(room_id)
        if reply is not None and reply.task is not None:
            reply.task.cancel()

    async def get_reply_in_progress(self, actor: Actor, room_id: int) -> ReplyInProgress | None:
        """The room's reply being written, as it is now (None when there is none), for someone who may
        see the room."""
        await self._tx.run(lambda uow: room_access(uow, actor, room_id))
        reply = self._running.get(room_id)
        return reply.snapshot() if reply is not None else None

    async def wait_until_answered(self, room_id: int) -> None:
        """Return once the room has no reply in progress (one that starts meanwhile is waited for too)."""
        while (reply := self._running.get(room_id)) is not None and reply.task is not None:
            await asyncio.wait({reply.task})

    async def start(self, actor: Actor, room_id: int) -> ReplyInProgress:
        """Start a reply in the room; the actor must be a participant. One reply per room at a time."""
        await self._tx.run(lambda uow: _require_participant(uow, actor, room_id))
        return self._launch(room_id, replaces=None).snapshot()

    async def regenerate(self, actor: Actor, room_id: int) -> ReplyInProgress:
        """Answer again in place of the AI's latest reply in the room (the new text replaces it once
        there is any; the context is what came before the old reply). Counts as a message against the
        actor's rate limit."""
        if self._limit is not None:
            self._limit.hit(actor_key(room_id, actor), "You are asking too fast.")

        def latest_reply(uow: UnitOfWork) -> Message:
            _require_participant(uow, actor, room_id)
            ai = uow.participants.ai_of(room_id)
            latest = uow.messages.latest_by(room_id, ai.id) if ai is not None else None
            if latest is None:
                raise NotFound(f"{self._ai_name} has not answered in this room yet.")
            return latest

        return self._launch(room_id, replaces=await self._tx.run(latest_reply)).snapshot()

    def _launch(self, room_id: int, *, replaces: Message | None) -> _RunningReply:
        if room_id in self._running:
            raise Conflict(f"{self._ai_name} is already answering here. Wait for it, or stop it first.")
        reply = _RunningReply(reply_id=secrets.token_hex(6), room_id=room_id, replaces=replaces)
        self._running[room_id] = reply
        reply.task = asyncio.create_task(self._run(reply), name=f"AI reply in room {room_id}")
        return reply

    async def stop(self, actor: Actor, room_id: int) -> bool:
        """Stop the room's running reply (its partial text is saved, marked stopped); False if none ran.
        Anyone in the room may, guests included (even where they may not ask the AI)."""
        await self._tx.run(lambda uow: require_member(uow, actor, room_id))
        reply = self._running.get(room_id)
        if reply is None or reply.task is None:
            return False
        reply.stop_requested = True
        reply.task.cancel()
        await asyncio.gather(reply.task, return_exceptions=True)
        return True

    async def _run(self, reply: _RunningReply) -> None:
        started = time.monotonic()
        topic = room_topic(reply.room_id)
        status, notice = MessageStatus.COMPLETE, ""
        request: _Request | None = None
        stream: LlmStream | None = None
        unsent = ""
        try:
            replaces = reply.replaces.id if reply.replaces else None
            await self._pubsub.publish(
                topic, AiReplyStarted(room_id=reply.room_id, reply_id=reply.reply_id, replaces=replaces)
            )
            request = await self._request(reply)
            async with asyncio.timeout(self._timeout):
                stream = await self._llm.stream(model=request.model, messages=request.prompt.as_messages())
                flushed_at = float("-inf")  # the first text goes out at once; then one delta per interval
                async for delta in stream:
                    delta = drop_control_characters(delta)  # provider text is as untrusted as people's
                    reply.text += delta
                    unsent += delta
                    if time.monotonic() - flushed_at >= FLUSH_INTERVAL_S:
                        await self._publish_delta(reply, unsent)
                        unsent, flushed_at = "", time.monotonic()
        except asyncio.CancelledError:
            if not reply.stop_requested:
                raise  # shutting down: nothing to save
            status = MessageStatus.STOPPED
        except TimeoutError:
            status, notice = MessageStatus.FAILED, f"{self._ai_name} took too long and was stopped."
        except LlmError as exc:
            status, notice = MessageStatus.FAILED, exc.message
        except Exception:
            log.exception("AI reply failed")
            status, notice = MessageStatus.FAILED, f"{self._ai_name} could not answer because of an internal error."
        finally:
            if stream is not None:
                await asyncio.shield(_close(stream))
            self._running.pop(reply.room_id, None)
        try:
            if unsent:
                await self._publish_delta(reply, unsent)
            await self._finish(reply, request, stream, status, notice, started)
        except Exception:  # the room must still hear that the reply is over
            log.exception("saving an AI reply failed")
            failed = AiReplyEnded(
                room_id=reply.room_id,
                reply_id=reply.reply_id,
                message_id=None,
                status=MessageStatus.FAILED.value,
                notice=f"{self._ai_name}'s reply could not be saved.",
            )
            await self._pubsub.publish(topic, failed)

    async def _publish_delta(self, reply: _RunningReply, text: str) -> None:
        await self._pubsub.publish(
            room_topic(reply.room_id), AiReplyDelta(room_id=reply.room_id, reply_id=reply.reply_id, text=text)
        )

    async def _request(self, reply: _RunningReply) -> _Request:
        """Load the room, its AI participant (created if missing) and history; build the prompt."""
        room_id = reply.room_id
        before_id = reply.replaces.id if reply.replaces else None  # a regenerated reply sees what came before

        def load(uow: UnitOfWork):  # a read: the SQLite writer stays free for the room's messages
            room = uow.rooms.get(room_id)
            settings = uow.rooms.ai_settings(room_id)
            ai = ai_participant(uow, room_id)
            people = [p.display_name for p in sorted(uow.participants.list(room_id), key=place_in_people_list)]
            history = list(reversed(uow.messages.newest_before(room_id, before_id, HISTORY_MESSAGES)))
            return room, settings, ai, people, history

        room, settings, ai, people, history = await self._tx.run(load)
        model = self._settings.model_for(settings)
        if not model:
            raise no_model_configured()  # before counting tokens: that would import litellm for nothing
        context = RoomContext(
            ai_name=self._ai_name,
            room_name=room.name,
            room_topic=room.topic,
            instruction=settings.instruction,
            present=people,
            today=self._clock().date(),
            ai_participant_id=ai.id,
        )

        def count(text: str) -> int:
            return self._llm.count_tokens(model, text)

        prompt = await asyncio.to_thread(build_prompt, context, history, budget=self._context_tokens, count=count)
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
            completion = await asyncio.to_thread(self._llm.count_tokens, model, text) if text else 0
            prompt, estimated = request.prompt.tokens, True
        cost = self._llm.cost(model, prompt, completion)
        return UsageRecord(model, prompt, completion, cost, estimated)

    async def _finish(self, reply, request, stream, status, notice, started) -> None:
        """Save the reply once (if it has any text) with its usage, then tell the room it ended."""
        message: Message | None = None
        usage = await self._usage(request, stream, reply.text) if request is not None else None
        if request is not None and (reply.text or usage is not None):
            record = ReplyRecord(
                status=status,
                model=request.model,
                prompt_tokens=usage.prompt_tokens if usage and not usage.estimated else None,
                completion_tokens=usage.completion_tokens if usage and not usage.estimated else None,
                latency_ms=round((time.monotonic() - started) * 1000),
            )
            message = await self._tx.run(lambda uow: self._save(uow, reply, request, record, usage), write=True)
        topic = room_topic(reply.room_id)
        if message is not None and reply.replaces is not None:  # (None: the old reply was deleted meanwhile)
            await self._pubsub.publish(
                topic, MessageUpdated(room_id=reply.room_id, message_id=message.id, message=message)
            )
        elif message is not None:
            await self._pubsub.publish(
                topic, MessagePosted(room_id=reply.room_id, message_id=message.id, message=message)
            )
        ended = AiReplyEnded(
            room_id=reply.room_id,
            reply_id=reply.reply_id,
            message_id=message.id if message else None,
            status=status.value,
            notice=notice,
        )
        await self._pubsub.publish(topic, ended)

    def _save(self, uow: UnitOfWork, reply, request, record: ReplyRecord, usage: UsageRecord | None):
        now = self._clock()
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


def _require_participant(uow: UnitOfWork, actor: Actor, room_id: int) -> None:
    access = room_access(uow, actor, room_id)
    if access.me is None:
        raise Forbidden("Join the room to ask the AI.")
    if not access.may_ask_ai:
        raise Forbidden(GUESTS_MAY_NOT_ASK)


def _what_was_asked(uow: UnitOfWork, event: MessagePosted) -> tuple[Message, Room, Participant] | None:
    """The message, its room and its author, if the author is a person still in the room."""
    message = event.message or uow.messages.get(event.message_id)
    room = uow.rooms.get(event.room_id)
    author = uow.participants.get(message.participant_id) if message is not None else None
    if message is None or room is None or author is None:
        return None
    if author.kind is ParticipantKind.AI or author.state is not ParticipantState.ACTIVE:
        return None
    return message, room, author


async def _close(stream: LlmStream) -> None:
    try:
        await stream.aclose()
    except Exception:  # closing a broken stream may fail too; the reply is over either way
        log.debug("closing the AI stream failed", exc_info=True)

"""The AI participant's replies: when to answer, and one reply task per room, owned by the room.

A reply is a task of this service, not of the tab that asked: closing that tab does not stop it; any
participant who may post can. How one reply is written (prompt, streaming, saving) is ai_writer.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import secrets
from collections.abc import Callable
from functools import partial

from chatapp.domain.access import require_member, room_access
from chatapp.domain.ai_models import ReplyInProgress
from chatapp.domain.ai_running import LOST_AFTER_S, RunningReplies
from chatapp.domain.ai_settings import AiSettings
from chatapp.domain.ai_writer import ReplyWriter, RunningReply
from chatapp.domain.errors import Conflict, Forbidden, NotFound
from chatapp.domain.events import (
    EVERY_ROOM,
    AiNotice,
    AiStopRequested,
    AiTextNow,
    AiTextWanted,
    Event,
    FeedGap,
    MessagePosted,
    RoomDeleted,
    RoomSettingsChanged,
    room_topic,
)
from chatapp.domain.limits import SharedRateLimiter, actor_key
from chatapp.domain.models import (
    Actor,
    AiMode,
    Message,
    Participant,
    ParticipantKind,
    ParticipantState,
    Role,
    Room,
    Scope,
)
from chatapp.domain.ports import Clock, LlmClient, PubSub, Transactor, UnitOfWork, stop_all, utc_now

log = logging.getLogger(__name__)

GUESTS_MAY_NOT_ASK = "The room's owner has not allowed guests to ask the AI here."
# Whose messages never start a reply: the AI's own, and an incoming webhook's (anyone holding its URL
# could otherwise spend the room's AI budget).
# A page opened on one process mid-reply asks the writing process for the text so far; over the bus the
# answer takes a millisecond or two. Without one this soon (that process is busy or gone) the page starts
# from the reply's last beat.
ASK_WRITER_S = 0.5
NEVER_ASKS = frozenset({ParticipantKind.AI, ParticipantKind.WEBHOOK})
_MENTION = re.compile(r"(?<![\w@])@ai\b", re.IGNORECASE)


def mentions_ai(text: str) -> bool:
    """True when the text mentions the AI participant as @ai."""
    return _MENTION.search(text) is not None


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
        limit: SharedRateLimiter | None = None,
        origin: str | None = None,
        lost_after: float = LOST_AFTER_S,
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
        # this process, among those writing replies (a reply's row says which one writes it)
        self._rows = RunningReplies(
            tx=tx, pubsub=pubsub, clock=clock, origin=origin or secrets.token_hex(8), ai_name=ai_name,
            lost_after=lost_after,
        )  # fmt: skip
        self._writer = ReplyWriter(tx, pubsub, llm, ai_name, settings, context_tokens, timeout, clock, self._rows)
        self._running: dict[int, RunningReply] = {}
        self._asked: dict[str, asyncio.Future[str]] = {}  # ask -> the answer of the process writing a reply
        self._writing: dict[int, set[asyncio.Task]] = {}  # room -> reply tasks not ended yet (saving included)
        # room -> its AI mode, as last read; forgotten when the room's settings change. Most messages
        # mention nobody in a room that answers mentions only: they are decided without a read.
        self._modes: dict[int, AiMode] = {}

    def subscribe(self) -> Callable[[], None]:
        """Decide on every message posted in this process whether to answer it (see _on_message_posted;
        a message posted in another process is decided there), and forget the AI modes known when any
        process changes a room's settings."""
        return stop_all(
            self._pubsub.subscribe(EVERY_ROOM, self._on_message_posted, local_only=True),
            self._pubsub.subscribe(EVERY_ROOM, self._on_room_news),
        )

    async def _on_room_news(self, event: Event) -> None:
        """Any process's news: forget a room's AI mode when it changed; stop a reply written here when
        someone asked another process to; end it when the room was deleted elsewhere; tell the text of a
        reply written here to a process that asks, and take the answer to one this process asked."""
        if isinstance(event, RoomSettingsChanged | RoomDeleted):
            self._modes.pop(event.room_id, None)
        elif isinstance(event, FeedGap):
            self._modes.clear()
        if isinstance(event, RoomDeleted):
            self.drop_room(event.room_id)
        elif isinstance(event, AiStopRequested):
            reply = self._running.get(event.room_id)
            if reply is not None and reply.reply_id == event.reply_id and reply.task is not None:
                reply.stop_requested = True
                reply.task.cancel()
        elif isinstance(event, AiTextWanted):
            reply = self._running.get(event.room_id)
            if reply is not None and reply.reply_id == event.reply_id:
                now = AiTextNow(room_id=event.room_id, reply_id=event.reply_id, ask=event.ask, text=reply.text)
                await self._pubsub.publish(room_topic(event.room_id), now)
        elif isinstance(event, AiTextNow):
            asked = self._asked.get(event.ask)
            if asked is not None and not asked.done():
                asked.set_result(event.text)

    def start_sweeping(self) -> None:
        """Look for replies whose process died, every few seconds, until stop_sweeping (ai_running.py)."""
        self._rows.start_sweeping(lambda: {r.reply_id for r in self._running.values()})

    async def stop_sweeping(self) -> None:
        """Stop looking for lost replies (the server stops)."""
        await self._rows.stop_sweeping()

    async def sweep_lost_replies(self) -> int:
        """Save the replies whose process died as interrupted now; how many (tests, and the sweeper)."""
        return await self._rows.sweep({r.reply_id for r in self._running.values()})

    async def _on_message_posted(self, event: Event) -> None:
        """A person's message was saved: start a reply if the room's AI mode asks for one. When it
        cannot start (switched off, busy, not allowed for guests), the asker alone is told why."""
        if isinstance(event, RoomSettingsChanged | RoomDeleted):
            self._modes.pop(event.room_id, None)  # also here: this subscription may read the mode first
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
            await self._launch(room.id, replaces=None)
        except Conflict:
            await self._tell(message, f"{self._ai_name} is still answering; ask again when it is done.")

    def _may_ask(self, event: MessagePosted) -> bool:
        """False when the message surely asks nothing (the AI's own, or no mention in a room whose AI
        answers mentions only or is off): then nothing is read."""
        message = event.message
        if message is None:
            return True
        if message.author_kind in NEVER_ASKS:
            return False
        mode = self._modes.get(event.room_id)
        return mode is None or mode is AiMode.EVERY or mentions_ai(message.body)

    async def _tell(self, message: Message, text: str) -> None:
        notice = AiNotice(room_id=message.room_id, text=text, participant_id=message.participant_id)
        await self._pubsub.publish(room_topic(message.room_id), notice)

    def drop_room(self, room_id: int) -> None:
        """The room was deleted: a reply still being written there ends without being saved."""
        reply = self._running.get(room_id)
        if reply is not None and reply.task is not None and not reply.task.cancelling():
            reply.task.cancel()  # once (this process's deletion, then the event of it, both call this)

    async def get_reply_in_progress(self, actor: Actor, room_id: int) -> ReplyInProgress | None:
        """The room's reply being written, as it is now (None when there is none), for someone who may
        see the room."""
        await self._tx.run(lambda uow: room_access(uow, actor, room_id, scope=Scope.READ))
        reply = self._running.get(room_id)
        if reply is not None:
            return reply.snapshot()
        elsewhere = await self._rows.in_progress(room_id)  # written by another process, as of its last beat
        return None if elsewhere is None else await self._ask_writer(elsewhere)

    async def _ask_writer(self, reply: ReplyInProgress) -> ReplyInProgress:
        """The text so far of a reply another process writes, from that process (its last beat when it
        does not answer within ASK_WRITER_S)."""
        ask = secrets.token_hex(8)
        answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._asked[ask] = answer
        try:
            wanted = AiTextWanted(room_id=reply.room_id, reply_id=reply.reply_id, ask=ask)
            await self._pubsub.publish(room_topic(reply.room_id), wanted)
            return dataclasses.replace(reply, text=await asyncio.wait_for(answer, ASK_WRITER_S))
        except TimeoutError:
            return reply
        finally:
            self._asked.pop(ask, None)

    async def wait_until_answered(self, room_id: int) -> None:
        """Return once the room has no reply in progress, saved and told (one that starts meanwhile is
        waited for too). A reply frees the room before it is saved: its task is waited for to its end."""
        while tasks := self._writing.get(room_id):
            await asyncio.wait(set(tasks))

    async def start_reply(self, actor: Actor, room_id: int) -> ReplyInProgress:
        """Start a reply in the room; the actor must be a participant. One reply per room at a time."""
        await self._tx.run(lambda uow: _require_participant(uow, actor, room_id))
        return (await self._launch(room_id, replaces=None)).snapshot()

    async def regenerate_reply(self, actor: Actor, room_id: int) -> ReplyInProgress:
        """Answer again in place of the AI's latest reply in the room (the new text replaces it once
        there is any; the context is what came before the old reply). Counts as a message against the
        actor's rate limit."""
        if self._limit is not None:
            await self._limit.hit(actor_key(room_id, actor), "You are asking too fast.")

        def latest_reply(uow: UnitOfWork) -> Message:
            _require_participant(uow, actor, room_id)
            ai = uow.participants.ai_of(room_id)
            latest = uow.messages.latest_by(room_id, ai.id) if ai is not None else None
            if latest is None:
                raise NotFound(f"{self._ai_name} has not answered in this room yet.")
            return latest

        return (await self._launch(room_id, replaces=await self._tx.run(latest_reply))).snapshot()

    async def _launch(self, room_id: int, *, replaces: Message | None) -> RunningReply:
        busy = f"{self._ai_name} is already answering here. Wait for it, or stop it first."
        if room_id in self._running:
            raise Conflict(busy)
        reply = RunningReply(reply_id=secrets.token_hex(6), room_id=room_id, replaces=replaces)
        self._running[room_id] = reply  # held here while the room's row is claimed: no second start meanwhile
        try:
            await self._rows.claim(room_id, reply.reply_id, replaces.id if replaces else None, busy)
        except BaseException:
            self._running.pop(room_id, None)
            raise
        release = partial(self._running.pop, room_id, None)
        reply.task = asyncio.create_task(self._writer.write(reply, release), name=f"AI reply in room {room_id}")
        writing = self._writing.setdefault(room_id, set())
        writing.add(reply.task)

        def done(task: asyncio.Task) -> None:
            writing.discard(task)
            if not writing and self._writing.get(room_id) is writing:
                del self._writing[room_id]

        reply.task.add_done_callback(done)
        return reply

    async def stop_reply(self, actor: Actor, room_id: int) -> bool:
        """Stop the room's running reply (its partial text is saved, marked stopped); False if none ran.
        Anyone in the room may, guests included (even where they may not ask the AI)."""
        await self._tx.run(lambda uow: require_member(uow, actor, room_id, scope=Scope.AI))
        reply = self._running.get(room_id)
        if reply is None or reply.task is None:
            elsewhere = await self._rows.in_progress(room_id)
            if elsewhere is None:
                return False
            # written by another process: it stops it when it hears this
            await self._pubsub.publish(room_topic(room_id), AiStopRequested(room_id, elsewhere.reply_id))
            return True
        reply.stop_requested = True
        reply.task.cancel()
        await asyncio.gather(reply.task, return_exceptions=True)
        return True


def _require_participant(uow: UnitOfWork, actor: Actor, room_id: int) -> None:
    if not require_member(uow, actor, room_id, scope=Scope.AI, to="ask the AI").may_ask_ai:
        raise Forbidden(GUESTS_MAY_NOT_ASK)


def _what_was_asked(uow: UnitOfWork, event: MessagePosted) -> tuple[Message, Room, Participant] | None:
    """The message, its room and its author, if the author is a person still in the room."""
    message = event.message or uow.messages.get(event.message_id)
    room = uow.rooms.get(event.room_id)
    author = uow.participants.get(message.participant_id) if message is not None else None
    if message is None or room is None or author is None:
        return None
    if author.kind in NEVER_ASKS or author.state is not ParticipantState.ACTIVE:
        return None
    return message, room, author

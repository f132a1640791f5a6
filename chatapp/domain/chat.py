"""Messages: post and read a room's history."""

from __future__ import annotations

import re
from datetime import datetime

from chatapp.domain.access import is_valid_id, require_member, require_scope, room_access
from chatapp.domain.errors import Conflict, Forbidden, NotFound, ValidationError
from chatapp.domain.events import MessageDeleted, MessagePosted, MessageUpdated, room_topic
from chatapp.domain.limits import SharedRateLimiter, actor_key
from chatapp.domain.models import Actor, CatchUp, Message, MessagePage, Scope
from chatapp.domain.ports import Clock, PubSub, Transactor, UnitOfWork, utc_now
from chatapp.domain.validation import clean_text

# How much longer than the limit a raw body may be and still be cleaned before it is measured: room for
# whitespace that is trimmed away and combining marks that normalisation joins (at 4x, cleaning costs
# at most ~2 ms for the default 4,000).
RAW_LENGTH_SLACK = 4
# A tab names each message it sends (random, made in the browser), so that sending it again after a
# reconnect finds the first copy. Long enough to be unguessable by chance, short enough to index.
CLIENT_MESSAGE_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")


def client_message_id_error(value: object) -> str | None:
    """Why a tab's id for its message is not acceptable (None when it is)."""
    if isinstance(value, str) and CLIENT_MESSAGE_ID.fullmatch(value):
        return None
    return "This message's id is not valid: reload the page and send it again."


class Chat:
    """The chat context: a message is committed, then published to the room's topic."""

    def __init__(
        self,
        *,
        tx: Transactor,
        pubsub: PubSub,
        max_message_chars: int,
        page_size: int,
        max_page_size: int = 200,
        clock: Clock = utc_now,
        post_limit: SharedRateLimiter | None = None,
    ) -> None:
        self._post_limit = post_limit  # per participant: a burst, then a steady rate
        self._tx = tx
        self._pubsub = pubsub
        self.max_message_chars = max_message_chars
        self.page_size = page_size
        self.max_page_size = max(max_page_size, page_size)
        self._clock = clock

    def validate_body(self, body: str) -> str:
        """The trimmed body, or ValidationError when empty or too long.

        The limit counts the cleaned text, but a body far beyond it is refused before it is cleaned:
        cleaning 999k characters took ~0.1 s of the event loop for a message refused anyway."""
        if not isinstance(body, str):
            raise ValidationError({"body": "Message is empty."})
        if len(body) > self.max_message_chars * RAW_LENGTH_SLACK:
            raise self._too_long(len(body))
        text = clean_text(body)
        if not text:
            raise ValidationError({"body": "Message is empty."})
        if len(text) > self.max_message_chars:
            raise self._too_long(len(text))
        return text

    def _too_long(self, length: int) -> ValidationError:
        return ValidationError(
            {"body": f"Message is too long: {length} characters, the limit is {self.max_message_chars}."}
        )

    async def post_message(
        self, actor: Actor, room_id: int, body: str, *, client_message_id: str | None = None
    ) -> Message:
        """Save a message by the actor's participant, then tell everyone in the room.

        With `client_message_id` (the sending tab's id for it), a message already saved under that id
        by the same participant is returned instead and nothing is saved or published again: a tab
        that resends after a reconnect gets its first message back, never a copy."""
        text = self.validate_body(body)
        if client_message_id is not None and (problem := client_message_id_error(client_message_id)):
            raise ValidationError({"client_message_id": problem})
        if (earlier := await self._take_post_slot(actor, room_id, client_message_id)) is not None:
            return earlier

        def work(uow: UnitOfWork) -> tuple[Message, bool]:
            access = require_member(uow, actor, room_id, scope=Scope.WRITE, to="post")
            now = self._clock()
            message = uow.messages.add(
                room_id=room_id, author=access.member, body=text, now=now, client_message_id=client_message_id
            )
            if message is not None:
                return message, True
            return _earlier_send(uow, access.member.id, client_message_id), False

        message, is_new = await self._tx.run(work, write=True)
        if not is_new:
            if self._post_limit is not None:
                await self._post_limit.refund(actor_key(room_id, actor))  # a resend is not a new message
            return message
        # The room's tabs, and the AI deciding whether to answer, hear of it through the event.
        await self._pubsub.publish(
            room_topic(room_id), MessagePosted(room_id=room_id, message_id=message.id, message=message)
        )
        return message

    async def _take_post_slot(self, actor: Actor, room_id: int, client_message_id: str | None) -> Message | None:
        """Take one message of the actor's rate in the room (per participant, checked on the loop). When
        none is left, a resend is answered with its first message instead of being refused as too fast
        (a tab that reconnects sends its whole outbox again)."""
        if self._post_limit is None:
            return None
        key = actor_key(room_id, actor)
        if (
            client_message_id is not None
            and await self._post_limit.wait_needed(key) > 0
            and (earlier := await self._already_sent(actor, room_id, client_message_id))
        ):
            return earlier
        await self._post_limit.hit(key, "You are sending messages too fast.")
        return None

    async def _already_sent(self, actor: Actor, room_id: int, client_message_id: str) -> Message | None:
        def work(uow: UnitOfWork) -> Message | None:
            me = room_access(uow, actor, room_id, scope=Scope.WRITE).me
            found = uow.messages.id_for_client_id(me.id, client_message_id) if me is not None else None
            return uow.messages.get(found) if found is not None else None

        return await self._tx.run(work)

    async def delete_message(self, actor: Actor, room_id: int, message_id: int) -> None:
        """Delete a message: its author may, and the room's owners and moderators may delete any. It
        disappears from every screen; the record keeps when and by whom."""

        def work(uow: UnitOfWork) -> None:
            me = require_member(uow, actor, room_id, scope=Scope.WRITE).member
            message = _message_in(uow, room_id, message_id)
            if message.participant_id != me.id:
                require_scope(actor, Scope.ADMIN)  # moderating: a token needs the admin scope
                if not me.can_moderate:
                    raise Forbidden("Only its author, or the room's owners and moderators, can delete a message.")
            uow.messages.mark_deleted(message.id, by=me.id, now=now)

        now = self._clock()
        await self._tx.run(work, write=True)
        deleted = MessageDeleted(room_id=room_id, message_id=message_id, deleted_at=now)
        await self._pubsub.publish(room_topic(room_id), deleted)

    async def update_message(self, actor: Actor, room_id: int, message_id: int, body: str) -> Message:
        """Its author replaces a message's text; it changes on every screen, marked edited. Nobody edits
        another's words, and an edit never asks the AI (it is not a new message)."""
        text = self.validate_body(body)

        def work(uow: UnitOfWork) -> Message:
            me = require_member(uow, actor, room_id, scope=Scope.WRITE, to="edit messages").member
            message = _message_in(uow, room_id, message_id)
            if message.participant_id != me.id:
                raise Forbidden("Only its author can edit a message.")
            edited = uow.messages.edit(message.id, body=text, now=self._clock())
            if edited is None:
                raise NotFound(_NO_SUCH_MESSAGE)
            return edited

        edited = await self._tx.run(work, write=True)
        await self._pubsub.publish(
            room_topic(room_id), MessageUpdated(room_id=room_id, message_id=edited.id, message=edited)
        )
        return edited

    async def list_messages(
        self,
        actor: Actor,
        room_id: int,
        *,
        before_id: int | None = None,
        after_id: int | None = None,
        limit: int | None = None,
    ) -> MessagePage:
        """A page of messages, oldest first, by keyset: older than before_id (or the newest), or with
        after_id the oldest newer than it. `limit` (at most max_page_size) defaults to page_size."""
        size = self._page_limit(limit)
        for name, value in (("before_id", before_id), ("after_id", after_id)):
            if value is not None and not (value == 0 and name == "after_id") and not is_valid_id(value):
                raise ValidationError({name: "Invalid position in the history."})
        if before_id is not None and after_id is not None:
            raise ValidationError({"after_id": "Page backwards (before_id) or forwards (after_id), not both."})

        def work(uow: UnitOfWork) -> MessagePage:
            room_access(uow, actor, room_id, scope=Scope.READ)
            if after_id is not None:
                rows = uow.messages.oldest_after(room_id, after_id, size + 1)
                return MessagePage(messages=rows[:size], has_older=after_id > 0, has_newer=len(rows) > size)
            rows = uow.messages.newest_before(room_id, before_id, size + 1)
            return MessagePage(messages=list(reversed(rows[:size])), has_older=len(rows) > size)

        return await self._tx.run(work)

    def _page_limit(self, limit: int | None) -> int:
        if limit is None:
            return self.page_size
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= self.max_page_size:
            raise ValidationError({"limit": f"A page holds 1 to {self.max_page_size} messages."})
        return limit

    async def catch_up(
        self,
        actor: Actor,
        room_id: int,
        after_id: int,
        changed_since: datetime | None = None,
        *,
        created_since: datetime | None = None,
    ) -> CatchUp | None:
        """What a reconnecting view missed: the messages after after_id, oldest first, and with
        changed_since the messages edited (replaced) or deleted at or after that moment. With
        created_since, also the messages written from then on whatever their id: with several
        processes one saved late, or never told, can have an id below one the view already shows
        (the view keeps one copy of each id).

        None when more than a page was missed or changed: the view should start again from the
        newest page.
        """
        if after_id != 0 and not is_valid_id(after_id):
            raise ValidationError({"after_id": "Invalid position in the history."})
        limit = self.page_size

        def work(uow: UnitOfWork) -> CatchUp | None:
            room_access(uow, actor, room_id, scope=Scope.READ)
            new = uow.messages.oldest_after(room_id, after_id, limit + 1)
            if created_since is not None:
                written = uow.messages.created_since(room_id, created_since, limit + 1)
                if len(written) > limit:  # some written meanwhile may not be among them
                    return None
                new = sorted([*(m for m in written if m.id <= after_id), *new], key=lambda message: message.id)
            edited, deleted = [], []
            if changed_since is not None:
                edited = uow.messages.edited_since(room_id, changed_since, limit + 1)
                deleted = uow.messages.deleted_since(room_id, changed_since, limit + 1)
            if max(len(new), len(edited), len(deleted)) > limit:
                return None
            return CatchUp(new=new, edited=edited, deleted_ids=deleted)

        return await self._tx.run(work)


_NO_SUCH_MESSAGE = "That message does not exist (or was deleted)."


def _message_in(uow: UnitOfWork, room_id: int, message_id: int) -> Message:
    """A message of this room that is not deleted; NotFound otherwise."""
    message = uow.messages.get(message_id) if is_valid_id(message_id) else None
    if message is None or message.room_id != room_id:
        raise NotFound(_NO_SUCH_MESSAGE)
    return message


def _earlier_send(uow: UnitOfWork, participant_id: int, client_message_id: str | None) -> Message:
    """The message this participant already saved under the client id (a resend of it)."""
    earlier_id = uow.messages.id_for_client_id(participant_id, client_message_id) if client_message_id else None
    earlier = uow.messages.get(earlier_id) if earlier_id is not None else None
    if earlier is None:  # saved, then deleted before the tab heard that it was saved
        raise Conflict("That message was sent and has been deleted since.")
    return earlier

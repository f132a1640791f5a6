"""Incoming webhooks: a secret URL of a room to which any script or service posts messages.

A room's owner creates one with a name; it becomes a participant of the room (kind webhook) and its URL
holds a secret shown once (only its SHA-256 is stored, like sessions, tokens and invite links). A POST
to it with {"text": ..., "username": ...} is a message by that participant, shown under the name given
(marked as a webhook everywhere), checked like everyone's: the same length, cleaning and rate limits.
Its messages never ask the AI (ai.NEVER_ASKS). Revoking it refuses its URL at once.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, replace
from datetime import timedelta

from chatapp.domain.access import is_valid_id, lock_room, require_owner
from chatapp.domain.accounts import hash_token
from chatapp.domain.chat import Chat
from chatapp.domain.errors import Conflict, NotFound, ValidationError
from chatapp.domain.events import MessagePosted, ParticipantsChanged, room_topic
from chatapp.domain.limits import SharedRateLimiter
from chatapp.domain.models import (
    Actor,
    IncomingWebhook,
    Message,
    NewIncomingWebhook,
    Participant,
    ParticipantKind,
    ParticipantState,
    Role,
)
from chatapp.domain.ports import Clock, PubSub, Transactor, UnitOfWork, utc_now
from chatapp.domain.validation import display_name_error, one_line

WEBHOOK_PREFIX = "whk_"  # tells what a leaked string is, as tokens' "chat_" does
WEBHOOK_TOKEN_BYTES = 32
URL_PATH = "/api/v1/hooks/"  # the webhook's URL is this path followed by its secret
UNKNOWN_WEBHOOK = "No such webhook (its URL is wrong, or it was revoked)."
# The last use is noted at most this often: a busy integration would otherwise write twice per message.
LAST_USE_PRECISION = timedelta(minutes=1)


@dataclass(frozen=True)
class WebhookLimits:
    """How many incoming webhooks a room may have."""

    webhooks_per_room: int = 20


def webhook_url_path(token: str) -> str:
    """The path (below the site's address) at which the webhook with this secret takes messages."""
    return URL_PATH + token


def _new_webhook_token() -> str:
    return WEBHOOK_PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(WEBHOOK_TOKEN_BYTES)).rstrip(b"=").decode()


def _webhook_in(uow: UnitOfWork, room_id: int, webhook_id: int) -> IncomingWebhook:
    webhook = uow.incoming_webhooks.get(webhook_id) if is_valid_id(webhook_id) else None
    if webhook is None or webhook.room_id != room_id:
        raise NotFound("That webhook is not in this room.")
    return webhook


def _in_room(participant: Participant) -> bool:
    return participant.state is ParticipantState.ACTIVE


class IncomingWebhooks:
    """The incoming webhooks context: create, list and revoke a room's webhooks; post through one."""

    def __init__(
        self,
        *,
        tx: Transactor,
        pubsub: PubSub,
        chat: Chat,
        post_limit: SharedRateLimiter | None = None,
        limits: WebhookLimits | None = None,
        reserved_names: tuple[str, ...] = (),
        clock: Clock = utc_now,
    ) -> None:
        self._tx = tx
        self._pubsub = pubsub
        self._chat = chat  # its checks of a message's text are everyone's
        self._post_limit = post_limit  # the room's message rate, per webhook
        self._limits = limits or WebhookLimits()
        self._reserved_names = reserved_names  # no webhook may look like the AI
        self._clock = clock

    def _checked_name(self, field: str, name: object) -> str:
        cleaned = one_line(name) if isinstance(name, str) else ""
        typed = name if isinstance(name, str) else ""
        if error := display_name_error(cleaned, reserved=self._reserved_names, typed=typed):
            raise ValidationError({field: error})
        return cleaned

    async def create_webhook(self, actor: Actor, room_id: int, name: str) -> NewIncomingWebhook:
        """A new incoming webhook of the room (its owners only), shown in the people list under its
        name; the secret of its URL is returned once."""
        clean_name = self._checked_name("name", name)
        token = _new_webhook_token()

        def work(uow: UnitOfWork) -> IncomingWebhook:
            lock_room(uow, room_id)
            owner = require_owner(uow, actor, room_id).member
            if uow.incoming_webhooks.count_active(room_id) >= self._limits.webhooks_per_room:
                raise Conflict(f"A room may have at most {self._limits.webhooks_per_room} webhooks.")
            now = self._clock()
            participant = uow.participants.add(
                room_id=room_id, kind=ParticipantKind.WEBHOOK, display_name=clean_name, role=Role.MEMBER, now=now
            )
            return uow.incoming_webhooks.add(
                room_id=room_id,
                participant_id=participant.id,
                name=clean_name,
                token_hash=hash_token(token),
                created_by=owner.id,
                now=now,
            )

        webhook = await self._tx.run(work, write=True)
        await self._pubsub.publish(room_topic(room_id), ParticipantsChanged(room_id=room_id))
        return NewIncomingWebhook(webhook=webhook, token=token)

    async def list_webhooks(self, actor: Actor, room_id: int) -> list[IncomingWebhook]:
        """The room's incoming webhooks, revoked ones included (its owners only)."""

        def work(uow: UnitOfWork) -> list[IncomingWebhook]:
            require_owner(uow, actor, room_id)
            return uow.incoming_webhooks.for_room(room_id)

        return await self._tx.run(work)

    async def revoke_webhook(self, actor: Actor, room_id: int, webhook_id: int) -> None:
        """Refuse the webhook's URL from now on (its owners only); its messages stay, its participant
        leaves the people list."""

        def work(uow: UnitOfWork) -> bool:
            require_owner(uow, actor, room_id)
            webhook = _webhook_in(uow, room_id, webhook_id)
            if webhook.revoked_at is not None:
                return False
            uow.incoming_webhooks.revoke(webhook.id, self._clock())
            participant = uow.participants.get(webhook.participant_id)
            if participant is not None:
                uow.participants.save(replace(participant, state=ParticipantState.LEFT))
            return True

        if await self._tx.run(work, write=True):
            await self._pubsub.publish(room_topic(room_id), ParticipantsChanged(room_id=room_id))

    async def post_via_webhook(self, token: object, text: object, username: object = None) -> Message:
        """Post `text` into the webhook's room as its participant, shown as `username` when given.
        NotFound for an unknown or revoked secret; the same checks and limits as everyone's messages."""
        body = self._webhook_text(text)
        display_as = self._checked_name("username", username) if username not in (None, "") else None
        webhook = await self._active_webhook(token)
        if self._post_limit is not None:
            await self._post_limit.hit(f"webhook:{webhook.id}", "This webhook is sending messages too fast.")

        def work(uow: UnitOfWork) -> Message:
            current = uow.incoming_webhooks.get(webhook.id)
            author = uow.participants.get(webhook.participant_id)
            # A moderator may remove its participant like anyone's: it then posts no more (until let back in).
            if current is None or current.revoked_at is not None or author is None or not _in_room(author):
                raise NotFound(UNKNOWN_WEBHOOK)
            now = self._clock()
            message = uow.messages.add(
                room_id=webhook.room_id, author=author, body=body, now=now, display_as=display_as
            )
            if message is None:  # only a client message id can collide, and a webhook sends none
                raise Conflict("The message could not be saved; send it again.")
            if current.last_used_at is None or now - current.last_used_at >= LAST_USE_PRECISION:
                uow.incoming_webhooks.touch(webhook.id, now)
            return message

        message = await self._tx.run(work, write=True)
        await self._pubsub.publish(
            room_topic(message.room_id), MessagePosted(room_id=message.room_id, message_id=message.id, message=message)
        )
        return message

    def _webhook_text(self, text: object) -> str:
        try:
            return self._chat.validate_body(text if isinstance(text, str) else "")
        except ValidationError as error:
            raise ValidationError({"text": error.fields.get("body", "Message is not valid.")}) from None

    async def _active_webhook(self, token: object) -> IncomingWebhook:
        if not isinstance(token, str) or not token.startswith(WEBHOOK_PREFIX) or len(token) > 100:
            raise NotFound(UNKNOWN_WEBHOOK)
        webhook = await self._tx.run(lambda uow: uow.incoming_webhooks.by_hash(hash_token(token)))
        if webhook is None or webhook.revoked_at is not None:
            raise NotFound(UNKNOWN_WEBHOOK)
        return webhook

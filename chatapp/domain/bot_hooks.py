"""Outgoing webhooks: a bot's URL, called when a person's message in one of its rooms is for it.

The bot's owner registers the URL and gets a signing secret (shown once). In each room the bot was added
to, its owners and moderators choose which messages call it: those that mention it (@username, the
default) or every one. A call is a JSON POST signed with HMAC-SHA256 over "<timestamp>.<body>" (headers
X-Chatapp-Timestamp and X-Chatapp-Signature: sha256=<hex>), with an event id (X-Chatapp-Event-Id) that
stays the same across retries. A 2xx answer whose JSON holds "text" is posted in the room by the bot
(once, whatever the retries: the event id is its client message id). No answer, or a 5xx, 408 or 429, is
tried again after a backoff, a bounded number of times; every call is logged for the bot's owner.

Calls run in tasks of their own, at most `max_in_flight` at once; beyond `max_waiting` waiting calls new
ones are logged as dropped. Nothing here is awaited by whoever posted: the room never waits for a bot.
Only people's messages (users and guests) call bots, so two bots (or a bot and the AI) never answer each
other in a loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import logging
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from chatapp.domain.access import require_moderator, target_participant
from chatapp.domain.chat import Chat
from chatapp.domain.errors import DomainError, Forbidden, NotFound, ValidationError
from chatapp.domain.events import (
    BOTS_TOPIC,
    EVERY_ROOM,
    BotHooksChanged,
    Event,
    FeedGap,
    MessagePosted,
    ParticipantsChanged,
    RoomDeleted,
    room_topic,
)
from chatapp.domain.models import (
    Actor,
    BotCalls,
    DeliveryStatus,
    HookDelivery,
    HookTarget,
    Message,
    OutgoingHook,
    Participant,
    ParticipantKind,
    Scope,
)
from chatapp.domain.ports import (
    Clock,
    HookCallFailed,
    HookSender,
    PubSub,
    Transactor,
    UnitOfWork,
    stop_all,
    utc_now,
)
from chatapp.domain.tokens import account_of, owned_bot

log = logging.getLogger(__name__)

MAX_URL_CHARS = 2000
SECRET_PREFIX = "whsec_"  # noqa: S105 (not a secret) says what a leaked string is
CALLS_FROM = frozenset({ParticipantKind.USER, ParticipantKind.GUEST})  # whose messages call bots
RETRY_STATUSES = frozenset({408, 429})  # and every 5xx: worth trying again
MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class HookSettings:
    """How outgoing webhooks are called."""

    timeout_s: float = 5.0  # per attempt
    attempts: int = 3  # the first call and its retries
    backoff_s: float = 1.0  # before the first retry; doubled before each next one
    max_in_flight: int = 20  # calls at once, for the whole process
    max_waiting: int = 500  # calls waiting their turn; more are dropped (and logged)
    deliveries_kept: int = 100  # per bot, for its owner to see
    allow_private_addresses: bool = False  # loopback, private and link-local addresses (a bot on the LAN)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value for a call: HMAC-SHA256 of "<timestamp>.<body>" in hex."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def mentions(text: str, username: str) -> bool:
    """Whether the text mentions @username (not inside another word or e-mail address)."""
    return re.search(rf"(?<![\w@])@{re.escape(username)}(?![\w-])", text, re.IGNORECASE) is not None


def is_public_address(address: str) -> bool:
    """Whether an IP address is on the public internet (not loopback, private, link-local, reserved)."""
    try:
        return ipaddress.ip_address(address).is_global
    except ValueError:
        return False


def url_error(url: object, *, allow_private: bool) -> str | None:
    """Why a URL cannot be an outgoing webhook (None when it can): http(s), a host, not too long, and
    no private address literal unless they are allowed. Names are checked when called."""
    if not isinstance(url, str) or not url.strip():
        return "Give the URL to call."
    if len(url) > MAX_URL_CHARS:
        return f"The URL must be at most {MAX_URL_CHARS} characters."
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError:
        return "That is not a valid URL."
    if parts.scheme not in ("http", "https") or not host:
        return "The URL must start with http:// or https:// and name a host."
    if not allow_private and _is_address(host) and not is_public_address(host):
        return "Private and loopback addresses are not allowed here (the instance's settings)."
    return None


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _event_payload(target: HookTarget, message: Message, event_id: str, room_name: str) -> bytes:
    payload = {
        "event": "message_posted",
        "event_id": event_id,
        "bot": {"id": target.bot.id, "username": target.bot.username},
        "room": {"id": message.room_id, "name": room_name},
        "message": {
            "id": message.id,
            "body": message.body,
            "author_name": message.author_name,
            "author_kind": message.author_kind.value,
            "participant_id": message.participant_id,
            "created_at": message.created_at.isoformat(),
        },
        "mentioned": mentions(message.body, target.bot.username),
    }
    return json.dumps(payload, ensure_ascii=False).encode()


def reply_text(body: bytes) -> str | None:
    """The "text" of a JSON answer, if it holds one (anything else is no reply)."""
    try:
        data = json.loads(body) if body.strip() else None
    except (ValueError, UnicodeDecodeError):
        return None
    text = data.get("text") if isinstance(data, dict) else None
    return text if isinstance(text, str) and text.strip() else None


def _reply_actor(target: HookTarget) -> Actor:
    """The bot, posting its webhook's answer: as a token that may write and nothing more."""
    bot = target.bot
    return Actor(
        user_id=bot.id,
        username=bot.username,
        display_name=bot.display_name,
        scopes=frozenset({Scope.WRITE}),
        is_bot=True,
    )


class OutgoingHooks:
    """The outgoing webhooks context: register and remove a bot's URL, choose which messages of a room
    call it, read the calls' log; and the calls themselves (subscribe() starts them)."""

    def __init__(
        self,
        *,
        tx: Transactor,
        pubsub: PubSub,
        sender: HookSender,
        chat: Chat,  # the bot's answers are posted like any message
        settings: HookSettings | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._tx = tx
        self._pubsub = pubsub
        self._sender = sender
        self._chat = chat
        self.settings = settings or HookSettings()
        self._clock = clock
        self._slots = asyncio.Semaphore(self.settings.max_in_flight)
        self._tasks: set[asyncio.Task[None]] = set()
        # room -> (its name, its bots with a hook), as last read: most messages are in rooms without any,
        # and are decided without a query. Forgotten when the room's people or any hook change.
        self._targets: dict[int, tuple[str, list[HookTarget]]] = {}

    # The owner's side ------------------------------------------------------------------------------

    async def set_hook(self, actor: Actor, bot_id: int, url: str) -> OutgoingHook:
        """Register (or replace) where the actor's bot is called; a new signing secret comes back, the
        only time it is shown."""
        owner_id = account_of(actor)
        if error := url_error(url, allow_private=self.settings.allow_private_addresses):
            raise ValidationError({"url": error})
        hook_url = url.strip()

        def work(uow: UnitOfWork) -> OutgoingHook:
            bot = owned_bot(uow, owner_id, bot_id)
            hook = OutgoingHook(bot_id=bot.id, url=hook_url, secret=_new_secret(), created_at=self._clock())
            uow.outgoing_hooks.put(hook)
            return hook

        hook = await self._tx.run(work, write=True)
        await self._hooks_changed(hook.bot_id)
        return hook

    async def get_hook(self, actor: Actor, bot_id: int) -> OutgoingHook | None:
        """The actor's bot's outgoing webhook, if it has one (its secret is not for showing again)."""
        owner_id = account_of(actor)

        def work(uow: UnitOfWork) -> OutgoingHook | None:
            return uow.outgoing_hooks.get(owned_bot(uow, owner_id, bot_id).id)

        return await self._tx.run(work)

    async def remove_hook(self, actor: Actor, bot_id: int) -> None:
        """The bot is called no more (its calls' log stays)."""
        owner_id = account_of(actor)

        def work(uow: UnitOfWork) -> None:
            if not uow.outgoing_hooks.delete(owned_bot(uow, owner_id, bot_id).id):
                raise NotFound("That bot has no outgoing webhook.")

        await self._tx.run(work, write=True)
        await self._hooks_changed(bot_id)

    async def _hooks_changed(self, bot_id: int) -> None:
        self._targets.clear()  # here at once; the other processes when they hear it
        await self._pubsub.publish(BOTS_TOPIC, BotHooksChanged(bot_id=bot_id))

    async def list_deliveries(self, actor: Actor, bot_id: int, limit: int = 50) -> list[HookDelivery]:
        """The newest calls of the actor's bot's webhook, newest first."""
        owner_id = account_of(actor)
        count = max(1, min(int(limit), self.settings.deliveries_kept))

        def work(uow: UnitOfWork) -> list[HookDelivery]:
            return uow.outgoing_hooks.deliveries(owned_bot(uow, owner_id, bot_id).id, count)

        return await self._tx.run(work)

    async def set_bot_calls(self, actor: Actor, room_id: int, participant_id: int, calls: str) -> Participant:
        """Which messages of the room call this bot (owners and moderators): mentions, or every one."""
        try:
            choice = BotCalls(calls)
        except ValueError:
            raise ValidationError({"calls": "Choose mention or every."}) from None

        def work(uow: UnitOfWork) -> Participant:
            require_moderator(uow, actor, room_id)
            bot = target_participant(uow, room_id, participant_id, missing="That bot is not in this room.")
            if bot.kind is not ParticipantKind.BOT:
                raise Forbidden("Only a bot is called by a room's messages.")
            return uow.participants.save(replace(bot, bot_calls=choice))

        participant = await self._tx.run(work, write=True)
        await self._pubsub.publish(room_topic(room_id), ParticipantsChanged(room_id=room_id))
        return participant

    # The calls -------------------------------------------------------------------------------------

    def subscribe(self) -> Callable[[], None]:
        """Hear the messages posted in this process's rooms (a message posted in another process is
        called for there), and every process's changes that make the cached targets stale."""
        return stop_all(
            self._pubsub.subscribe(EVERY_ROOM, self._on_message, local_only=True),
            self._pubsub.subscribe(EVERY_ROOM, self._forget_targets),
            self._pubsub.subscribe(BOTS_TOPIC, self._forget_targets),
        )

    async def stop(self) -> None:
        """Cancel the calls under way (the server is stopping); their log says pending."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._sender.close()

    async def wait_idle(self) -> None:
        """Until no call is under way (tests; a graceful stop)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _forget_targets(self, event: Event) -> None:
        if isinstance(event, ParticipantsChanged | RoomDeleted):
            self._targets.pop(event.room_id, None)
        elif isinstance(event, BotHooksChanged | FeedGap):
            self._targets.clear()

    async def _on_message(self, event: Event) -> None:
        if not isinstance(event, MessagePosted):
            return
        room_name, targets = await self._targets_in(event.room_id)
        if not targets:
            return
        message = event.message or await self._tx.run(lambda uow: uow.messages.get(event.message_id))
        if message is None or message.author_kind not in CALLS_FROM:
            return
        for target in targets:
            if target.participant.bot_calls is BotCalls.EVERY or mentions(message.body, target.bot.username):
                self._start_call(target, message, room_name)

    async def _targets_in(self, room_id: int) -> tuple[str, list[HookTarget]]:
        if (known := self._targets.get(room_id)) is not None:
            return known

        def work(uow: UnitOfWork) -> tuple[str, list[HookTarget]]:
            room = uow.rooms.get(room_id)
            return (room.name if room else "", uow.outgoing_hooks.targets_in(room_id) if room else [])

        found = await self._tx.run(work)
        self._targets[room_id] = found
        return found

    def _start_call(self, target: HookTarget, message: Message, room_name: str) -> None:
        waiting = len(self._tasks)
        delivery = HookDelivery(
            id=0,
            bot_id=target.bot.id,
            event_id=uuid.uuid4().hex,
            room_id=message.room_id,
            message_id=message.id,
            status=DeliveryStatus.PENDING,
            attempts=0,
            created_at=self._clock(),
        )
        if waiting >= self.settings.max_waiting + self.settings.max_in_flight:
            dropped = replace(delivery, status=DeliveryStatus.DROPPED, error="Too many calls waiting.")
            task = asyncio.create_task(self._log_dropped(dropped), name="outgoing webhook dropped")
        else:
            task = asyncio.create_task(self._call(target, message, room_name, delivery), name="outgoing webhook")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _log_dropped(self, delivery: HookDelivery) -> None:
        log.warning("outgoing webhook of bot %s dropped: too many calls waiting", delivery.bot_id)
        await self._record(delivery, new=True)

    async def _call(self, target: HookTarget, message: Message, room_name: str, delivery: HookDelivery) -> None:
        try:
            async with self._slots:
                delivery = await self._record(delivery, new=True)
                body = _event_payload(target, message, delivery.event_id, room_name)
                delivery = await self._attempts(target, delivery, body)
                await self._record(delivery)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug here must not end the subscriber that started the call
            log.exception("outgoing webhook of bot %s failed", target.bot.id)

    async def _attempts(self, target: HookTarget, delivery: HookDelivery, body: bytes) -> HookDelivery:
        settings = self.settings
        for attempt in range(1, settings.attempts + 1):
            delivery = replace(delivery, attempts=attempt)
            if refusal := await self._address_refusal(target.hook.url):
                return self._finished(delivery, DeliveryStatus.FAILED, error=refusal)
            try:
                answer = await self._sender.post(
                    target.hook.url, body, self._headers(target, delivery, body), timeout=settings.timeout_s
                )
            except HookCallFailed as failure:
                delivery = replace(delivery, http_status=None, error=str(failure)[:MAX_ERROR_CHARS])
            else:
                delivery = replace(delivery, http_status=answer.status, error="")
                if 200 <= answer.status < 300:
                    return await self._answered(target, delivery, answer.body)
                if answer.status < 500 and answer.status not in RETRY_STATUSES:
                    return self._finished(delivery, DeliveryStatus.FAILED, error=f"Answered {answer.status}.")
                delivery = replace(delivery, error=f"Answered {answer.status}.")
            if attempt < settings.attempts:
                await asyncio.sleep(settings.backoff_s * 2 ** (attempt - 1))
        return self._finished(delivery, DeliveryStatus.FAILED, error=delivery.error)

    def _headers(self, target: HookTarget, delivery: HookDelivery, body: bytes) -> dict[str, str]:
        timestamp = str(int(time.time()))
        return {
            "Content-Type": "application/json",
            "User-Agent": "chatapp-webhooks",
            "X-Chatapp-Event": "message_posted",
            "X-Chatapp-Event-Id": delivery.event_id,
            "X-Chatapp-Timestamp": timestamp,
            "X-Chatapp-Signature": sign(target.hook.secret, timestamp, body),
        }

    async def _address_refusal(self, url: str) -> str | None:
        """Why this URL may not be called now: a name resolving to a private address (checked at each
        call, as the name may point elsewhere since it was registered)."""
        if self.settings.allow_private_addresses:
            return None
        host = urlsplit(url).hostname or ""
        try:
            addresses = [host] if _is_address(host) else await self._sender.addresses(host)
        except HookCallFailed as failure:
            return str(failure)[:MAX_ERROR_CHARS]
        if not addresses or not all(is_public_address(address) for address in addresses):
            return "The URL leads to a private or loopback address, which the instance's settings refuse."
        return None

    async def _answered(self, target: HookTarget, delivery: HookDelivery, answer: bytes) -> HookDelivery:
        text = reply_text(answer)
        if text is None:
            return self._finished(delivery, DeliveryStatus.DELIVERED)
        try:
            reply = await self._chat.post_message(
                _reply_actor(target), delivery.room_id, text, client_message_id=f"hook-{delivery.event_id}"
            )
        except DomainError as refusal:
            return self._finished(delivery, DeliveryStatus.DELIVERED, error=f"Reply not posted: {refusal.message}")
        return self._finished(delivery, DeliveryStatus.DELIVERED, reply_message_id=reply.id)

    def _finished(
        self, delivery: HookDelivery, status: DeliveryStatus, *, error: str = "", reply_message_id: int | None = None
    ) -> HookDelivery:
        return replace(
            delivery,
            status=status,
            error=error[:MAX_ERROR_CHARS],
            finished_at=self._clock(),
            reply_message_id=reply_message_id,
        )

    async def _record(self, delivery: HookDelivery, *, new: bool = False) -> HookDelivery:
        keep = self.settings.deliveries_kept

        def work(uow: UnitOfWork) -> HookDelivery:
            if not new:
                uow.outgoing_hooks.finish_delivery(delivery)
                return delivery
            saved = uow.outgoing_hooks.add_delivery(delivery)
            uow.outgoing_hooks.prune_deliveries(delivery.bot_id, keep)
            return saved

        return await self._tx.run(work, write=True)

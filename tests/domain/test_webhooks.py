"""Incoming webhooks and bots' outgoing webhooks, through the real services on SQLite and PostgreSQL; the
outgoing calls go over real HTTP to a receiver in the test (aiohttp), which checks their signatures."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from sqlalchemy import text

from chatapp.app import Runtime
from chatapp.domain.bot_hooks import mentions, reply_text, sign, url_error
from chatapp.domain.errors import Forbidden, NotFound, ValidationError
from chatapp.domain.events import AiNotice, AiReplyStarted, MessagePosted, room_topic
from chatapp.domain.limits import RateLimited
from chatapp.domain.models import Actor, DeliveryStatus, ParticipantKind, ParticipantState
from chatapp.domain.webhooks import URL_PATH, WEBHOOK_PREFIX, webhook_url_path
from tests.domain.helpers import sign_up
from tests.timing import LIVENESS_S

FAST_RETRIES = pytest.mark.settings(webhook_allow_private=True, webhook_backoff=0.01, webhook_timeout=1.0)


@pytest.fixture
async def live(runtime: Runtime) -> AsyncIterator[Runtime]:
    """The runtime with its pub/sub delivering (as the server runs it), stopped cleanly after."""
    await runtime.pubsub.start()
    yield runtime
    await runtime.services.bot_hooks.stop()
    await runtime.pubsub.stop()


async def room_of(runtime: Runtime) -> tuple[Actor, Actor, int]:
    owner, _ = await sign_up(runtime, "olive", "Olive")
    member, _ = await sign_up(runtime, "max", "Max")
    room = await runtime.services.rooms.create_room(owner, name="Ops", private=False)
    await runtime.services.membership.join(member, room.id)
    return owner, member, room.id


# Incoming -------------------------------------------------------------------------------------------


async def test_an_incoming_webhook_posts_as_its_participant_under_the_name_given(live: Runtime) -> None:
    owner, member, room_id = await room_of(live)
    heard: list[object] = []
    live.pubsub.subscribe(room_topic(room_id), heard.append)
    new = await live.services.webhooks.create_webhook(owner, room_id, "Deploys")
    assert new.token.startswith(WEBHOOK_PREFIX) and webhook_url_path(new.token) == URL_PATH + new.token
    with live.engine.connect() as conn:
        stored = conn.execute(text("SELECT token_hash FROM incoming_webhooks")).scalar_one()
    assert new.token not in stored and stored == hashlib.sha256(new.token.encode()).hexdigest()

    message = await live.services.webhooks.post_via_webhook(new.token, "  build **42** passed  ", "CI")
    assert (message.author_name, message.author_kind, message.body) == (
        "CI",
        ParticipantKind.WEBHOOK,
        "build **42** passed",
    )
    plain = await live.services.webhooks.post_via_webhook(new.token, "no name given")
    page = await live.services.chat.list_messages(member, room_id)
    assert [(m.author_name, m.author_kind) for m in page.messages] == [
        ("CI", ParticipantKind.WEBHOOK),
        ("Deploys", ParticipantKind.WEBHOOK),
    ]
    assert page.messages[-1].id == plain.id
    people = await live.services.membership.list_participants(member, room_id)
    assert any(p.kind is ParticipantKind.WEBHOOK and p.display_name == "Deploys" for p in people)
    await live.pubsub.settled()
    assert [e.message_id for e in heard if isinstance(e, MessagePosted)] == [message.id, plain.id]
    listed = await live.services.webhooks.list_webhooks(owner, room_id)
    assert [(w.name, w.last_used_at is not None) for w in listed] == [("Deploys", True)]


async def test_only_owners_manage_webhooks_and_a_revoked_url_is_refused(live: Runtime) -> None:
    owner, member, room_id = await room_of(live)
    webhooks = live.services.webhooks
    with pytest.raises(Forbidden):
        await webhooks.create_webhook(member, room_id, "Mine")
    new = await webhooks.create_webhook(owner, room_id, "Alerts")
    with pytest.raises(Forbidden):
        await webhooks.list_webhooks(member, room_id)
    with pytest.raises(Forbidden):
        await webhooks.revoke_webhook(member, room_id, new.webhook.id)
    await webhooks.post_via_webhook(new.token, "still works")
    await webhooks.revoke_webhook(owner, room_id, new.webhook.id)
    with pytest.raises(NotFound):
        await webhooks.post_via_webhook(new.token, "after revoking")
    people = await live.services.membership.list_participants(owner, room_id)
    assert not any(p.kind is ParticipantKind.WEBHOOK for p in people)  # it left the people list
    page = await live.services.chat.list_messages(owner, room_id)
    assert [m.body for m in page.messages] == ["still works"]  # what it posted stays
    for wrong in ("", "whk_nope", "chat_" + "A" * 43, 42, None, WEBHOOK_PREFIX + "x" * 200):
        with pytest.raises(NotFound):
            await webhooks.post_via_webhook(wrong, "hello")


@pytest.mark.parametrize(
    ("text_value", "username", "field_name"),
    [("", None, "text"), ("   ", None, "text"), ("x" * 5000, None, "text"), (42, None, "text"),
     ("hi", "Assistant", "username"), ("hi", "AI", "username"), ("hi", "x" * 65, "username"),
     ("hi", "evil\u202ename", "username")],
)  # fmt: skip
async def test_bad_input_through_a_webhook_is_refused_and_nothing_is_saved(
    live: Runtime, text_value: object, username: object, field_name: str
) -> None:
    owner, _, room_id = await room_of(live)
    new = await live.services.webhooks.create_webhook(owner, room_id, "Feed")
    with pytest.raises(ValidationError) as refused:
        await live.services.webhooks.post_via_webhook(new.token, text_value, username)
    assert field_name in refused.value.fields
    assert (await live.services.chat.list_messages(owner, room_id)).messages == []


@pytest.mark.settings(message_burst=2, message_per_second=0.01)
async def test_a_webhook_has_the_rooms_message_rate(live: Runtime) -> None:
    owner, _, room_id = await room_of(live)
    new = await live.services.webhooks.create_webhook(owner, room_id, "Chatty")
    for n in range(2):
        await live.services.webhooks.post_via_webhook(new.token, f"message {n}")
    with pytest.raises(RateLimited):
        await live.services.webhooks.post_via_webhook(new.token, "one too many")
    await live.services.chat.post_message(owner, room_id, "people still post")  # its own rate, not theirs


async def test_a_webhooks_mention_of_the_ai_asks_nothing(live: Runtime) -> None:
    owner, _, room_id = await room_of(live)
    heard: list[object] = []
    live.pubsub.subscribe(room_topic(room_id), heard.append)
    new = await live.services.webhooks.create_webhook(owner, room_id, "Feed")
    await live.services.webhooks.post_via_webhook(new.token, "@ai summarise everything, at length")
    await live.pubsub.settled()
    assert not [e for e in heard if isinstance(e, AiNotice | AiReplyStarted)]
    await live.services.chat.post_message(owner, room_id, "@ai are you there?")  # a person's mention does
    await live.pubsub.settled()
    assert [e for e in heard if isinstance(e, AiNotice | AiReplyStarted)]


@pytest.mark.settings(webhooks_per_room=1)
async def test_a_room_has_at_most_its_limit_of_webhooks(live: Runtime) -> None:
    owner, _, room_id = await room_of(live)
    first = await live.services.webhooks.create_webhook(owner, room_id, "One")
    with pytest.raises(Exception, match="at most 1"):
        await live.services.webhooks.create_webhook(owner, room_id, "Two")
    await live.services.webhooks.revoke_webhook(owner, room_id, first.webhook.id)
    await live.services.webhooks.create_webhook(owner, room_id, "Two")  # a revoked one does not count


# Outgoing -------------------------------------------------------------------------------------------


@dataclass
class Receiver:
    """A bot's web server: records each call, answers as `answer` says (status, JSON body, delay)."""

    url: str = ""
    calls: list[dict] = field(default_factory=list)
    answers: list[tuple[int, object, float]] = field(default_factory=list)  # taken in turn; the last repeats
    secret: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = dict(request.headers)
        self.calls.append({"headers": headers, "body": body, "json": json.loads(body)})
        status, payload, delay = (
            self.answers[min(len(self.calls), len(self.answers)) - 1] if self.answers else (200, None, 0)
        )
        if delay:
            await asyncio.sleep(delay)
        if payload is None:
            return web.Response(status=status)
        return web.json_response(payload, status=status)

    def signature_ok(self, call: dict) -> bool:
        timestamp = call["headers"]["X-Chatapp-Timestamp"]
        expected = hmac.new(self.secret.encode(), timestamp.encode() + b"." + call["body"], hashlib.sha256)
        given = call["headers"]["X-Chatapp-Signature"]
        return hmac.compare_digest(given, "sha256=" + expected.hexdigest())


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/hook", found.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    found.url = f"http://127.0.0.1:{port}/hook"
    yield found
    await runner.cleanup()


async def bot_in_room(runtime: Runtime, receiver: Receiver) -> tuple[Actor, Actor, int, int, int]:
    """Olive's bot "pinger" with an outgoing webhook to the receiver, added to her room; Max is a member."""
    owner, member, room_id = await room_of(runtime)
    bot = await runtime.services.tokens.create_bot(owner, username="pinger", display_name="Pinger")
    hook = await runtime.services.bot_hooks.set_hook(owner, bot.id, receiver.url)
    receiver.secret = hook.secret
    participant = await runtime.services.membership.add_bot(owner, room_id, "pinger")
    return owner, member, room_id, bot.id, participant.id


async def until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + LIVENESS_S
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


@FAST_RETRIES
async def test_a_mention_calls_the_bot_signed_and_its_answer_is_posted_once(live: Runtime, receiver: Receiver) -> None:
    receiver.answers = [(200, {"text": "pong from the bot"}, 0)]
    owner, member, room_id, bot_id, _ = await bot_in_room(live, receiver)
    await live.services.chat.post_message(member, room_id, "nobody called")  # no mention: no call
    asked = await live.services.chat.post_message(member, room_id, "hey @Pinger, ping?")
    await live.pubsub.settled()
    await live.services.bot_hooks.wait_idle()
    assert len(receiver.calls) == 1
    call = receiver.calls[0]
    assert receiver.signature_ok(call)
    assert abs(int(call["headers"]["X-Chatapp-Timestamp"]) - time.time()) < 60
    payload = call["json"]
    assert payload["event_id"] == call["headers"]["X-Chatapp-Event-Id"] and payload["mentioned"] is True
    assert payload["message"]["id"] == asked.id and payload["message"]["body"] == "hey @Pinger, ping?"
    assert payload["room"] == {"id": room_id, "name": "Ops"} and payload["bot"]["username"] == "pinger"
    await live.pubsub.settled()
    page = await live.services.chat.list_messages(member, room_id)
    assert [(m.author_name, m.author_kind, m.body) for m in page.messages[-1:]] == [
        ("Pinger", ParticipantKind.BOT, "pong from the bot")
    ]
    await live.services.bot_hooks.wait_idle()
    assert len(receiver.calls) == 1  # the bot's own answer calls nobody
    [delivery] = await live.services.bot_hooks.list_deliveries(owner, bot_id)
    assert (delivery.status, delivery.attempts, delivery.http_status) == (DeliveryStatus.DELIVERED, 1, 200)
    assert delivery.reply_message_id == page.messages[-1].id and delivery.event_id == payload["event_id"]


@FAST_RETRIES
async def test_failures_are_retried_with_the_same_event_id_and_logged(live: Runtime, receiver: Receiver) -> None:
    receiver.answers = [(503, None, 0), (500, {"text": "not this"}, 0), (200, {"text": "third time"}, 0)]
    owner, member, room_id, bot_id, _ = await bot_in_room(live, receiver)
    await live.services.chat.post_message(member, room_id, "@pinger are you up?")
    await live.pubsub.settled()
    await live.services.bot_hooks.wait_idle()
    assert len(receiver.calls) == 3
    assert len({c["headers"]["X-Chatapp-Event-Id"] for c in receiver.calls}) == 1
    assert all(receiver.signature_ok(c) for c in receiver.calls)
    [delivery] = await live.services.bot_hooks.list_deliveries(owner, bot_id)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DELIVERED, 3)
    bodies = [m.body for m in (await live.services.chat.list_messages(member, room_id)).messages]
    assert bodies.count("third time") == 1 and "not this" not in bodies


@FAST_RETRIES
async def test_a_client_error_is_not_retried_and_a_silent_bot_times_out(live: Runtime, receiver: Receiver) -> None:
    receiver.answers = [(404, None, 0)]
    owner, member, room_id, bot_id, _ = await bot_in_room(live, receiver)
    await live.services.chat.post_message(member, room_id, "@pinger one")
    await live.pubsub.settled()
    await live.services.bot_hooks.wait_idle()
    [refused] = await live.services.bot_hooks.list_deliveries(owner, bot_id)
    assert (refused.status, refused.attempts, refused.http_status) == (DeliveryStatus.FAILED, 1, 404)

    receiver.calls.clear()
    receiver.answers = [(200, {"text": "too late"}, 3.0)]  # longer than the 1 s timeout
    started = time.monotonic()
    await live.services.chat.post_message(member, room_id, "@pinger two")
    assert time.monotonic() - started < 0.5  # posting never waits for the bot
    await live.pubsub.settled()
    await live.services.bot_hooks.wait_idle()
    latest = (await live.services.bot_hooks.list_deliveries(owner, bot_id))[0]
    assert (latest.status, latest.attempts) == (DeliveryStatus.FAILED, 3)
    assert "No answer within" in latest.error


@FAST_RETRIES
async def test_every_message_calls_a_bot_when_the_room_says_so(live: Runtime, receiver: Receiver) -> None:
    owner, member, room_id, _, participant_id = await bot_in_room(live, receiver)
    with pytest.raises(Forbidden):
        await live.services.bot_hooks.set_bot_calls(member, room_id, participant_id, "every")
    with pytest.raises(ValidationError):
        await live.services.bot_hooks.set_bot_calls(owner, room_id, participant_id, "sometimes")
    changed = await live.services.bot_hooks.set_bot_calls(owner, room_id, participant_id, "every")
    assert changed.bot_calls.value == "every"
    await live.pubsub.settled()
    await live.services.chat.post_message(member, room_id, "just talking")
    await live.services.chat.post_message(owner, room_id, "still talking")
    await live.pubsub.settled()
    await live.services.bot_hooks.wait_idle()
    # Calls run side by side (never awaited in turn), so they may arrive in either order;
    # each carries its message's id, by which a bot orders them.
    calls = sorted(receiver.calls, key=lambda c: c["json"]["message"]["id"])
    assert [c["json"]["message"]["body"] for c in calls] == ["just talking", "still talking"]
    assert [c["json"]["mentioned"] for c in calls] == [False, False]


@FAST_RETRIES
async def test_a_removed_bot_or_a_removed_hook_is_called_no_more(live: Runtime, receiver: Receiver) -> None:
    owner, member, room_id, bot_id, participant_id = await bot_in_room(live, receiver)
    await live.services.membership.remove_participant(owner, room_id, participant_id)
    await live.pubsub.settled()
    await live.services.chat.post_message(member, room_id, "@pinger gone?")
    await live.pubsub.settled()
    await live.services.bot_hooks.wait_idle()
    assert receiver.calls == []
    await live.services.membership.add_bot(owner, room_id, "pinger")
    await live.services.bot_hooks.remove_hook(owner, bot_id)
    await live.pubsub.settled()
    await live.services.chat.post_message(member, room_id, "@pinger and now?")
    await live.pubsub.settled()
    await live.services.bot_hooks.wait_idle()
    assert receiver.calls == []


async def test_only_the_bots_owner_manages_its_hook_and_reads_its_calls(live: Runtime, receiver: Receiver) -> None:
    owner, member, _ = await room_of(live)
    bot = await live.services.tokens.create_bot(owner, username="pinger", display_name="Pinger")
    hooks = live.services.bot_hooks
    for attempt in (
        hooks.set_hook(member, bot.id, "https://example.com/hook"),
        hooks.get_hook(member, bot.id),
        hooks.remove_hook(member, bot.id),
        hooks.list_deliveries(member, bot.id),
    ):
        with pytest.raises(NotFound):
            await attempt
    assert await hooks.get_hook(owner, bot.id) is None
    first = await hooks.set_hook(owner, bot.id, "https://example.com/hook")
    second = await hooks.set_hook(owner, bot.id, "https://example.com/other")
    assert first.secret != second.secret  # setting it again makes a new secret
    assert (await hooks.get_hook(owner, bot.id)).url == "https://example.com/other"  # type: ignore[union-attr]


async def test_private_addresses_are_refused_unless_the_instance_allows_them(live: Runtime, receiver: Receiver) -> None:
    owner, member, room_id = await room_of(live)
    bot = await live.services.tokens.create_bot(owner, username="pinger", display_name="Pinger")
    with pytest.raises(ValidationError, match="Private"):
        await live.services.bot_hooks.set_hook(owner, bot.id, receiver.url)  # 127.0.0.1
    # A name is checked when called (it may point elsewhere since): localhost resolves to loopback.
    await live.services.bot_hooks.set_hook(owner, bot.id, receiver.url.replace("127.0.0.1", "localhost"))
    await live.services.membership.add_bot(owner, room_id, "pinger")
    await live.services.chat.post_message(member, room_id, "@pinger hello")
    await live.pubsub.settled()
    await live.services.bot_hooks.wait_idle()
    assert receiver.calls == []
    [delivery] = await live.services.bot_hooks.list_deliveries(owner, bot.id)
    assert delivery.status is DeliveryStatus.FAILED and "private" in delivery.error


@pytest.mark.parametrize(
    ("url", "allowed"),
    [("https://example.com/x", True), ("http://8.8.8.8:8080/x", True), ("ftp://example.com", False),
     ("https://", False), ("not a url", False), ("http://10.0.0.1/x", False), ("http://[::1]/x", False),
     ("http://169.254.169.254/latest", False), ("https://example.com/" + "x" * 2000, False), (None, False)],
)  # fmt: skip
def test_url_rules(url: object, allowed: bool) -> None:
    assert (url_error(url, allow_private=False) is None) is allowed


def test_mentions_signatures_and_replies() -> None:
    assert mentions("hi @pinger!", "pinger") and mentions("@PINGER", "pinger")
    assert not mentions("mail me@pinger.org", "pinger") and not mentions("@pingers", "pinger")
    assert sign("s", "1", b"{}") == "sha256=" + hmac.new(b"s", b"1.{}", hashlib.sha256).hexdigest()
    assert reply_text(b'{"text": "yes"}') == "yes"
    assert reply_text(b"") is None and reply_text(b"[1]") is None and reply_text(b'{"text": "  "}') is None
    assert reply_text(b"\xff not json") is None and reply_text(b'{"text": 5}') is None


async def test_a_webhooks_participant_left_state_is_kept_on_revoking(live: Runtime) -> None:
    owner, _, room_id = await room_of(live)
    new = await live.services.webhooks.create_webhook(owner, room_id, "Feed")
    await live.services.webhooks.revoke_webhook(owner, room_id, new.webhook.id)
    await live.services.webhooks.revoke_webhook(owner, room_id, new.webhook.id)  # twice: no error
    with live.engine.connect() as conn:
        state = conn.execute(
            text("SELECT state FROM participants WHERE id = :id"), {"id": new.webhook.participant_id}
        ).scalar_one()
    assert state == ParticipantState.LEFT.value


async def test_a_webhook_whose_participant_a_moderator_removed_posts_no_more(live: Runtime) -> None:
    owner, _, room_id = await room_of(live)
    new = await live.services.webhooks.create_webhook(owner, room_id, "Spam")
    await live.services.membership.remove_participant(owner, room_id, new.webhook.participant_id)
    with pytest.raises(NotFound):
        await live.services.webhooks.post_via_webhook(new.token, "still here?")
    await live.services.membership.readmit(owner, room_id, new.webhook.participant_id)
    await live.services.webhooks.post_via_webhook(new.token, "back")

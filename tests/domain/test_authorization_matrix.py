"""The authorization matrix: every domain operation tried as a guest of room A, a member of room B, a
member of A, a moderator of A, the owner of A and a bot added to no room, on SQLite and PostgreSQL; and
as the owner of A acting through a personal access token, once without a scope the operation needs
(MissingScope, whatever the room) and once with exactly the scopes it needs (as the owner).

Each cell is one test case, (operation, role). An allowed cell ("ok") also checks that the operation
really happened (the message is saved, the link works, the person is gone...); a denied cell expects
one exact error class and checks that nothing in the database changed. Room A is private, so a member
of B may not even learn that it exists: NotFound, the answer for a room that does not exist. Forbidden
means "you can see it, but may not do this". Room B is public: the variant for seeing and joining a
room one is not in.

Anonymous visitors: every domain operation takes an Actor first, except the few that take a token or a
form (test_only_token_and_form_operations_work_without_an_actor checks this on the service classes),
and an anonymous visitor has no Actor: the only way to get one is a valid session token, a valid guest
session token, or a valid invite link followed as a guest. So anonymous visitors are covered through
those token-taking operations, at the end of this file.

Speed: the accounts are signed up once per backend (argon2 makes sign-up the slow part, ~50 ms each);
everything the operations touch (rooms, memberships, guests, invite link, messages, AI reply) is built
anew for every cell of an operation that may change something, so no cell sees another cell's changes.
The cells of operations that only read share one world, and each of them checks that it left the
database exactly as it found it.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from sqlalchemy import text

from chatapp.app import Runtime, build_runtime, migrate_database
from chatapp.domain.accounts import Accounts, SignUpForm
from chatapp.domain.ai import AiReplies
from chatapp.domain.ai_models import ReplyRecord
from chatapp.domain.ai_settings import AiSettings
from chatapp.domain.bot_hooks import OutgoingHooks
from chatapp.domain.chat import Chat
from chatapp.domain.errors import Conflict, DomainError, Forbidden, MissingScope, NotAuthenticated, NotFound
from chatapp.domain.events import AiReplyEnded
from chatapp.domain.invites import InviteInvalid, Invites
from chatapp.domain.live import LiveRooms
from chatapp.domain.membership import Membership
from chatapp.domain.models import Actor, AiMode, MessageStatus, ParticipantKind, Role, Room, Scope
from chatapp.domain.ports import utc_now
from chatapp.domain.room_settings import RoomSettings, RoomSettingsChanges
from chatapp.domain.rooms import Rooms
from chatapp.domain.services import Services
from chatapp.domain.tokens import ApiTokens
from chatapp.domain.webhooks import IncomingWebhooks
from chatapp.store.db import SqlTransactor
from tests.conftest import fresh_postgres_database, make_settings
from tests.domain.helpers import PASSWORD, sign_up
from tests.timing import LIVENESS_S

GUEST, MEMBER_B, MEMBER, MODERATOR, OWNER = "guest_of_A", "member_of_B", "member_of_A", "moderator_of_A", "owner_of_A"
BOT = "bot_in_no_room"  # a bot account with every scope, added to neither room
ROLES = (GUEST, MEMBER_B, MEMBER, MODERATOR, OWNER, BOT)
# The owner of A acting through a personal access token: with every scope but one the operation needs (it
# is refused for that scope, whatever the room), and with exactly the scopes it needs (as the owner).
TOKEN_WITHOUT_SCOPE, TOKEN_WITH_ONLY_ITS_SCOPES = "owner_token_without_its_scope", "owner_token_with_only_its_scopes"
TOKEN_ROLES = (TOKEN_WITHOUT_SCOPE, TOKEN_WITH_ONLY_ITS_SCOPES)
ALL_SCOPES = frozenset(Scope)
SCOPE_RANK = (Scope.READ, Scope.WRITE, Scope.AI, Scope.ADMIN)  # the cell without a scope lacks the highest
ROLE_IN_A = {GUEST: Role.GUEST, MEMBER: Role.MEMBER, MODERATOR: Role.MODERATOR, OWNER: Role.OWNER}
OK = "ok"
OTHER_PASSWORD = "another correct horse"

# ---------------------------------------------------------------------------------------------------
# The world of one cell
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Users:
    owner: Actor  # owner of A
    moderator: Actor  # made moderator of A by the owner
    member: Actor  # member of A
    member_b: Actor  # member of B only
    bea: Actor  # owner of B (not a role of the matrix)
    bot: Actor  # bea's bot, acting through a token with every scope
    owner_token_id: int  # a real token of the owner's (its scopes vary by cell)


@dataclass
class Backend:
    runtime: Runtime
    tx: SqlTransactor
    users: Users
    reading_world: World | None = None  # shared by the cells of operations that only read


@dataclass
class World:
    n: int
    runtime: Runtime
    s: Services
    users: Users
    a: Room  # private
    b: Room  # public
    actors: dict[str, Actor]
    pid: dict[str, int]  # role -> its participant id in A
    msg: dict[str, int]  # role -> a message of its own (member of B: in B)
    victim: Actor  # a second guest of A, whose message others delete and whom they remove
    victim_pid: int
    victim_msg: int
    ai_reply: int  # an earlier AI reply in A, for regenerate
    invite_id: int  # the owner's link to A, which the guests followed
    token: str
    made: dict[str, int] = field(default_factory=dict)  # what a cell's `prepare` made (a webhook, a bot's place)


_numbers = itertools.count(1)


async def _sign_up_users(runtime: Runtime) -> Users:
    names = ("olga", "max", "mia", "bob", "bea")
    actors = [(await sign_up(runtime, name))[0] for name in names]
    tokens = runtime.services.tokens
    bot = await tokens.create_bot(actors[-1], username="beabot", display_name="Bea's bot")
    bot_token = await tokens.create_token(actors[-1], name="bot", scopes=sorted(ALL_SCOPES), bot_id=bot.id)
    owner_token = await tokens.create_token(actors[0], name="matrix", scopes=sorted(ALL_SCOPES))
    bot_actor = await tokens.authenticate_token(bot_token.value)
    assert bot_actor is not None and bot_actor.is_bot
    return Users(*actors, bot=bot_actor, owner_token_id=owner_token.token.id)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    """One migrated database per backend for the whole matrix, with its accounts signed up."""
    data: Path = tmp_path_factory.mktemp(f"matrix-{request.param}")
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{data / 'chatapp.db'}"
        else:  # the matrix makes ~6000 commits
            server = request.getfixturevalue("postgres_server")
            url = stack.enter_context(fresh_postgres_database(server, fast_commits=True))
        runtime = build_runtime(make_settings(data, url))
        stack.callback(runtime.engine.dispose)
        migrate_database(runtime)
        with ThreadPoolExecutor(max_workers=1) as pool:  # its own loop, outside pytest-asyncio's
            users = pool.submit(asyncio.run, _sign_up_users(runtime)).result()
        yield Backend(runtime=runtime, tx=SqlTransactor(runtime.engine), users=users)


async def build_world(backend: Backend) -> World:
    """Owner, moderator and member of private room A (the last two by the owner's link), two guests of A
    (by the same link), a member of public room B; everyone has posted once; the AI has answered in A."""
    n = next(_numbers)
    s, u = backend.runtime.services, backend.users
    # Independent steps run together: fewer round trips, and on SQLite they share one commit.
    a, b = await asyncio.gather(
        s.rooms.create_room(u.owner, name=f"A {n}", private=True), s.rooms.create_room(u.bea, name=f"B {n}")
    )
    link = await s.invites.create_invite(u.owner, a.id)
    *_, guest_pass, victim_pass = await asyncio.gather(
        s.membership.join(u.member_b, b.id),
        s.invites.accept_as_user(u.moderator, link.token),
        s.invites.accept_as_user(u.member, link.token),
        s.invites.accept_as_guest(link.token, "Gwen"),
        s.invites.accept_as_guest(link.token, "Victor"),
    )
    guest, victim = guest_pass.actor, victim_pass.actor
    actors = {GUEST: guest, MEMBER_B: u.member_b, MEMBER: u.member, MODERATOR: u.moderator, OWNER: u.owner, BOT: u.bot}

    def seed_ai_reply(uow) -> int:
        ai = uow.participants.ai_of(a.id)
        record = ReplyRecord(MessageStatus.COMPLETE, "openai/fake-model", 3, 3, 10)
        return uow.messages.add_reply(
            room_id=a.id, participant_id=ai.id, body="An earlier answer.", now=utc_now(), record=record
        ).id

    # The AI's earlier reply is written by a transactor of the test's own, while the services' writer is idle.
    listed, ai_reply = await asyncio.gather(
        s.membership.list_participants(u.owner, a.id), backend.tx.run(seed_ai_reply, write=True)
    )
    people = {(p.user_id, p.guest_id): p.id for p in listed}
    pid = {
        role: people[(actor.user_id, actor.guest_id)] for role, actor in actors.items() if role not in (MEMBER_B, BOT)
    }
    victim_pid = people[(None, victim.guest_id)]
    in_a = list(pid)

    _, in_b, by_victim, *posted = await asyncio.gather(
        s.membership.update_role(u.owner, a.id, pid[MODERATOR], "moderator"),
        s.chat.post_message(u.member_b, b.id, "hello from B"),
        s.chat.post_message(victim, a.id, "the victim's message"),
        *(s.chat.post_message(actors[role], a.id, f"hello from {role}") for role in in_a),
    )
    msg = {role: message.id for role, message in zip(in_a, posted, strict=True)}
    msg[MEMBER_B] = msg[BOT] = in_b.id  # neither has a message in A: they try one of B through A
    victim_msg = by_victim.id
    return World(
        n=n,
        runtime=backend.runtime,
        s=s,
        users=u,
        a=a,
        b=b,
        actors=actors,
        pid=pid,
        msg=msg,
        victim=victim,
        victim_pid=victim_pid,
        victim_msg=victim_msg,
        ai_reply=ai_reply,
        invite_id=link.invite.id,
        token=link.token,
    )


def snapshot(w: World) -> dict[str, list]:
    """Everything a denied operation might have changed, read straight from the tables."""
    rooms = {"a": w.a.id, "b": w.b.id}
    queries = {
        "rooms": "SELECT * FROM rooms WHERE id IN (:a, :b) ORDER BY id",
        "participants": "SELECT id, role, state, removed_by, bot_calls FROM participants"
        " WHERE room_id IN (:a, :b) ORDER BY id",
        "webhooks": "SELECT id, name, revoked_at FROM incoming_webhooks WHERE room_id = :a ORDER BY id",
        "messages": "SELECT id, body, status, edited_at, deleted_at, deleted_by FROM messages"
        " WHERE room_id IN (:a, :b) ORDER BY id",
        "invites": "SELECT id, uses, revoked_at FROM invites WHERE room_id = :a ORDER BY id",
        "counts": "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM rooms), (SELECT count(*) FROM guests),"
        " (SELECT count(*) FROM invites), (SELECT count(*) FROM ai_usage), (SELECT count(*) FROM participants),"
        " (SELECT count(*) FROM api_tokens)",
        "passwords": "SELECT id, password_hash FROM users ORDER BY id",
    }
    with w.runtime.engine.connect() as conn:
        return {name: [tuple(row) for row in conn.execute(text(sql), rooms)] for name, sql in queries.items()}


def deleted_by(w: World, message_id: int) -> tuple:
    with w.runtime.engine.connect() as conn:
        row = conn.execute(
            text("SELECT body, deleted_at IS NOT NULL, deleted_by FROM messages WHERE id = :id"), {"id": message_id}
        ).one()
    return tuple(row)


class Recorder:
    """A RoomWatcher that remembers what it was told."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.ai_events: list = []

    async def on_message(self, message) -> None:
        self.messages.append(message.body)

    async def on_participants_changed(self) -> None:
        pass

    async def on_room_changed(self) -> None:
        pass

    async def on_room_deleted(self) -> None:
        pass

    async def on_ai_event(self, event) -> None:
        self.ai_events.append(event)

    async def on_participant_removed(self, participant_id: int) -> None:
        pass

    async def on_message_deleted(self, message_id: int, deleted_at=None) -> None:
        pass


async def settle(w: World) -> None:
    """Wait until every event was handled and A's AI reply (if one was started) has ended, so no task
    outlives the cell."""
    await w.runtime.pubsub.settled()
    await asyncio.wait_for(w.s.ai.wait_until_answered(w.a.id), timeout=LIVENESS_S)
    await w.runtime.pubsub.settled()


def ids(messages) -> list[int]:
    return [m.id for m in messages]


# ---------------------------------------------------------------------------------------------------
# The operations: each does the thing as `me` and, when allowed, checks that it happened
# ---------------------------------------------------------------------------------------------------

Op = Callable[[World, Actor, str], Awaitable[None]]


@dataclass(frozen=True)
class Operation:
    run: Op
    expected: tuple  # per role, in ROLES order: OK or the exception class
    prepare: Callable[[World], Awaitable[None]] | None = field(default=None)  # done before, by the owner or a moderator
    reads_only: bool = False  # its cells share one world, and must leave it exactly as it was
    scopes: frozenset[Scope] = frozenset()  # what a token needs for it; none: not for tokens at all
    token_refusal: type[DomainError] = Forbidden  # with no scopes: what every token gets


async def access_a(w: World, me: Actor, role: str) -> None:
    access = await w.s.rooms.get_room_access(me, w.a.id)
    assert access.me is not None and access.me.id == w.pid[role] and access.me.role is ROLE_IN_A[role]


async def history_a(w: World, me: Actor, role: str) -> None:
    page = await w.s.chat.list_messages(me, w.a.id)
    assert {w.msg[OWNER], w.msg[GUEST], w.ai_reply} <= set(ids(page.messages))


async def since_a(w: World, me: Actor, role: str) -> None:
    everything = {w.msg[GUEST], w.msg[MEMBER], w.msg[MODERATOR], w.msg[OWNER], w.victim_msg, w.ai_reply}
    missed = await w.s.chat.catch_up(me, w.a.id, 0)
    assert missed is not None and set(ids(missed.new)) == everything
    assert (await w.s.chat.catch_up(me, w.a.id, max(everything))).new == []


async def participants_a(w: World, me: Actor, role: str) -> None:
    people = await w.s.membership.list_participants(me, w.a.id)
    assert {*w.pid.values(), w.victim_pid} <= set(ids(people))


async def watch_a(w: World, me: Actor, role: str) -> None:
    seen = Recorder()
    stop = await w.s.live.watch(me, w.a.id, seen)
    try:
        await w.s.chat.post_message(w.users.owner, w.a.id, "live news")
        await w.runtime.pubsub.settled()
        assert seen.messages == ["live news"]
    finally:
        stop()


async def post_a(w: World, me: Actor, role: str) -> None:
    message = await w.s.chat.post_message(me, w.a.id, "my news")
    assert message.participant_id == w.pid[role]
    assert message.id in ids((await w.s.chat.list_messages(w.users.owner, w.a.id)).messages)


async def edit_own_message(w: World, me: Actor, role: str) -> None:
    target = w.msg[role]  # a member of B tries their message in B through room A
    edited = await w.s.chat.update_message(me, w.a.id, target, "fixed typo")
    assert edited.id == target and edited.body == "fixed typo" and edited.edited_at is not None
    assert "fixed typo" in [m.body for m in (await w.s.chat.list_messages(w.users.owner, w.a.id)).messages]


async def edit_others_message(w: World, me: Actor, role: str) -> None:
    await w.s.chat.update_message(me, w.a.id, w.victim_msg, "words put in their mouth")


async def add_bot(w: World, me: Actor, role: str) -> None:
    added = await w.s.membership.add_bot(me, w.a.id, w.users.bot.username)
    assert added.kind is ParticipantKind.BOT and added.user_id == w.users.bot.user_id
    assert (await w.s.rooms.get_room_access(w.users.bot, w.a.id)).me == added


async def create_webhook(w: World, me: Actor, role: str) -> None:
    new = await w.s.webhooks.create_webhook(me, w.a.id, "Feed")
    posted = await w.s.webhooks.post_via_webhook(new.token, "from the feed")
    assert posted.id in ids((await w.s.chat.list_messages(w.users.owner, w.a.id)).messages)


async def owner_makes_a_webhook(w: World) -> None:
    new = await w.s.webhooks.create_webhook(w.users.owner, w.a.id, "Feed")
    w.made["webhook"], w.token = new.webhook.id, new.token  # (the invite's token is not used by these cells)


async def list_webhooks(w: World, me: Actor, role: str) -> None:
    assert w.made["webhook"] in [hook.id for hook in await w.s.webhooks.list_webhooks(me, w.a.id)]


async def revoke_webhook(w: World, me: Actor, role: str) -> None:
    await w.s.webhooks.revoke_webhook(me, w.a.id, w.made["webhook"])
    with pytest.raises(NotFound):
        await w.s.webhooks.post_via_webhook(w.token, "after revoking")


async def owner_adds_a_bot(w: World) -> None:
    helper = await w.s.tokens.create_bot(w.users.owner, username=f"helper{w.n}", display_name="Helper")
    w.made["bot"] = (await w.s.membership.add_bot(w.users.owner, w.a.id, helper.username)).id


async def set_bot_calls(w: World, me: Actor, role: str) -> None:
    changed = await w.s.bot_hooks.set_bot_calls(me, w.a.id, w.made["bot"], "every")
    assert changed.id == w.made["bot"] and changed.bot_calls.value == "every"


async def delete_own_message(w: World, me: Actor, role: str) -> None:
    target = w.msg[role]  # a member of B tries their message in B through room A
    await w.s.chat.delete_message(me, w.a.id, target)
    assert target not in ids((await w.s.chat.list_messages(w.users.owner, w.a.id)).messages)
    assert deleted_by(w, target) == ("", True, w.pid[role])


async def delete_others_message(w: World, me: Actor, role: str) -> None:
    await w.s.chat.delete_message(me, w.a.id, w.victim_msg)
    assert w.victim_msg not in ids((await w.s.chat.list_messages(w.users.owner, w.a.id)).messages)
    assert deleted_by(w, w.victim_msg) == ("", True, w.pid[role])


async def join_a(w: World, me: Actor, role: str) -> None:
    participant = await w.s.membership.join(me, w.a.id)  # already in: the same participant, the same role
    assert participant.id == w.pid[role] and participant.role is ROLE_IN_A[role]


async def leave_a(w: World, me: Actor, role: str) -> None:
    await w.s.membership.leave(me, w.a.id)
    with pytest.raises(NotFound):  # a private room: gone for them
        await w.s.rooms.get_room_access(me, w.a.id)
    assert w.pid[role] not in ids(await w.s.membership.list_participants(w.users.owner, w.a.id))


async def create_invite(w: World, me: Actor, role: str) -> None:
    new = await w.s.invites.create_invite(me, w.a.id)
    assert new.invite.created_by == w.pid[role] and len(new.token) == 43
    assert (await w.s.invites.get_invite_preview(new.token)).room_name == w.a.name


async def allow_members_to_invite(w: World) -> None:
    await w.s.room_settings.update_room_settings(
        w.users.owner, w.a.id, RoomSettingsChanges(members_can_invite=True, guests_can_use_ai=True)
    )


async def list_invites(w: World, me: Actor, role: str) -> None:
    listed = await w.s.invites.list_invites(me, w.a.id)
    assert [i.id for i in listed] == [w.invite_id] and listed[0].uses == 4


async def revoke_invite(w: World, me: Actor, role: str) -> None:
    await w.s.invites.revoke_invite(me, w.a.id, w.invite_id)
    with pytest.raises(InviteInvalid):
        await w.s.invites.get_invite_preview(w.token)


async def set_role(w: World, me: Actor, role: str) -> None:
    changed = await w.s.membership.update_role(me, w.a.id, w.pid[MEMBER], "moderator")
    assert changed.id == w.pid[MEMBER] and changed.role is Role.MODERATOR


async def remove_participant(w: World, me: Actor, role: str) -> None:
    await w.s.membership.remove_participant(me, w.a.id, w.victim_pid)
    assert w.victim_pid not in ids(await w.s.membership.list_participants(w.users.owner, w.a.id))
    with pytest.raises(NotFound):  # a removed guest cannot see the room any more, let alone post
        await w.s.chat.post_message(w.victim, w.a.id, "still here?")


async def moderator_removes_the_victim(w: World) -> None:
    await w.s.membership.remove_participant(w.users.moderator, w.a.id, w.victim_pid)


async def owner_removes_the_victim(w: World) -> None:
    await w.s.membership.remove_participant(w.users.owner, w.a.id, w.victim_pid)


async def list_removed(w: World, me: Actor, role: str) -> None:
    assert ids(await w.s.membership.list_removed_participants(me, w.a.id)) == [w.victim_pid]


async def readmit(w: World, me: Actor, role: str) -> None:
    await w.s.membership.readmit(me, w.a.id, w.victim_pid)
    assert w.victim_pid in ids(await w.s.membership.list_participants(w.users.owner, w.a.id))
    await w.s.chat.post_message(w.victim, w.a.id, "back again")


async def rename_a(w: World, me: Actor, role: str) -> None:
    await w.s.room_settings.update_room_settings(
        me, w.a.id, RoomSettingsChanges(name="Room A, renamed", topic="new topic")
    )
    assert (await w.s.rooms.get_room_access(w.users.owner, w.a.id)).room.name == "Room A, renamed"


async def delete_room_a(w: World, me: Actor, role: str) -> None:
    await w.s.rooms.delete_room(me, w.a.id, confirm_name=w.a.name)
    with pytest.raises(NotFound):
        await w.s.rooms.get_room_access(w.users.owner, w.a.id)


async def set_options(w: World, me: Actor, role: str) -> None:
    await w.s.room_settings.update_room_settings(
        me, w.a.id, RoomSettingsChanges(members_can_invite=True, guests_can_use_ai=False)
    )
    room = (await w.s.rooms.get_room_access(w.users.owner, w.a.id)).room
    assert room.members_can_invite and not room.guests_can_use_ai


async def ai_settings_view(w: World, me: Actor, role: str) -> None:
    view = await w.s.ai_settings.get_ai_settings(me, w.a.id)
    assert view.can_edit == (role == OWNER) and view.settings.mode is AiMode.MENTION


async def ai_settings_update(w: World, me: Actor, role: str) -> None:
    await w.s.room_settings.update_room_settings(me, w.a.id, RoomSettingsChanges(mode="every", instruction="Be brief."))
    settings = (await w.s.ai_settings.get_ai_settings(w.users.owner, w.a.id)).settings
    assert settings.mode is AiMode.EVERY and settings.instruction == "Be brief."


async def ai_settings_usage(w: World, me: Actor, role: str) -> None:
    assert await w.s.ai_settings.list_ai_usage(me, w.a.id) == []  # the seeded reply has no usage record


async def ai_start(w: World, me: Actor, role: str) -> None:
    seen = Recorder()
    stop = await w.s.live.watch(w.users.owner, w.a.id, seen)
    try:
        reply = await w.s.ai.start_reply(me, w.a.id)
        assert reply.room_id == w.a.id and reply.replaces_id is None
        await settle(w)
    finally:
        stop()
    # No model is configured in these tests: the reply really ran, and ended with the notice saying so.
    ended = [e for e in seen.ai_events if isinstance(e, AiReplyEnded)]
    assert len(ended) == 1 and ended[0].status == "failed" and "No AI model is configured" in ended[0].notice


async def forbid_guests_the_ai(w: World) -> None:
    await w.s.room_settings.update_room_settings(
        w.users.owner, w.a.id, RoomSettingsChanges(members_can_invite=False, guests_can_use_ai=False)
    )


async def ai_stop(w: World, me: Actor, role: str) -> None:
    assert await w.s.ai.stop_reply(me, w.a.id) is False  # allowed; nothing was running


async def ai_regenerate(w: World, me: Actor, role: str) -> None:
    reply = await w.s.ai.regenerate_reply(me, w.a.id)  # allowed and there is an earlier reply: not "nothing to do"
    assert reply.replaces_id == w.ai_reply
    await settle(w)


def at_a_browser(me: Actor) -> Actor:
    """The same person with every right, to check what an operation did (a token's narrow scopes may not
    allow reading it back)."""
    return replace(me, scopes=None, token_id=None)


async def follow_link(w: World, me: Actor, role: str) -> None:
    assert await w.s.invites.accept_as_user(me, w.token) == w.a.id
    access = await w.s.rooms.get_room_access(at_a_browser(me), w.a.id)
    assert access.me is not None and access.me.role is ROLE_IN_A.get(role, Role.MEMBER)


async def access_b(w: World, me: Actor, role: str) -> None:
    access = await w.s.rooms.get_room_access(me, w.b.id)
    if role == MEMBER_B:
        assert access.me is not None and access.me.role is Role.MEMBER
    else:  # a public room they are not in: they see it and may join
        assert access.me is None and access.can_join and not access.can_post


async def history_b(w: World, me: Actor, role: str) -> None:
    assert w.msg[MEMBER_B] in ids((await w.s.chat.list_messages(me, w.b.id)).messages)


async def join_b(w: World, me: Actor, role: str) -> None:
    participant = await w.s.membership.join(me, w.b.id)
    assert participant.room_id == w.b.id and participant.role is Role.MEMBER and participant.user_id == me.user_id


async def post_b(w: World, me: Actor, role: str) -> None:
    message = await w.s.chat.post_message(me, w.b.id, "hi B")
    assert message.id in ids((await w.s.chat.list_messages(w.users.bea, w.b.id)).messages)


async def create_room(w: World, me: Actor, role: str) -> None:
    room = await w.s.rooms.create_room(me, name=f"Mine {w.n}")
    mine = {s.room.id: s.role for s in (await w.s.rooms.list_rooms(at_a_browser(me))).my_rooms}
    assert mine[room.id] is Role.OWNER


async def lobby(w: World, me: Actor, role: str) -> None:
    seen = await w.s.rooms.list_rooms(me)
    mine = {s.room.id: s.role for s in seen.my_rooms}
    public = {r.id for r in seen.public_rooms}
    if role == GUEST:  # a guest sees the rooms they were invited to, nothing else
        assert mine == {w.a.id: Role.GUEST} and public == set()
    elif role == BOT:  # a bot sees the rooms it was added to (other cells' A rooms), no public ones
        assert w.a.id not in mine and w.b.id not in mine and public == set()
    elif role == MEMBER_B:
        assert mine.get(w.b.id) is Role.MEMBER and w.a.id not in mine and w.a.id not in public
    else:
        assert mine.get(w.a.id) is ROLE_IN_A[role] and w.b.id in public and w.a.id not in public


async def sign_up_guest(w: World, me: Actor, role: str) -> None:
    session = await w.s.accounts.sign_up_guest(me, SignUpForm(f"gwen{w.n}", "Gwen", PASSWORD))
    user = await w.s.accounts.authenticate(session.token)
    access = await w.s.rooms.get_room_access(user, w.a.id)
    assert access.me is not None and access.me.id == w.pid[GUEST]  # the same participant...
    assert access.me.role is Role.GUEST and access.me.kind is ParticipantKind.USER  # ...still a guest


async def change_display_name(w: World, me: Actor, role: str) -> None:
    await w.s.accounts.update_display_name(me, "Someone Else")
    await w.s.accounts.update_display_name(me, me.display_name)  # the accounts are shared


async def change_password(w: World, me: Actor, role: str) -> None:
    await w.s.accounts.update_password(me, current=PASSWORD, new=OTHER_PASSWORD)
    await w.s.accounts.update_password(me, current=OTHER_PASSWORD, new=PASSWORD)  # the accounts are shared


async def sign_out_everywhere(w: World, me: Actor, role: str) -> None:
    # The actors of the shared accounts are kept by the test, not read from sessions: they still act.
    await w.s.accounts.sign_out_everywhere(me)
    with w.runtime.engine.connect() as conn:
        left = conn.execute(text("SELECT count(*) FROM sessions WHERE user_id = :u"), {"u": me.user_id}).scalar_one()
    assert left == 0


NF, F = NotFound, Forbidden
R, W, AI, ADM = (frozenset({scope}) for scope in (Scope.READ, Scope.WRITE, Scope.AI, Scope.ADMIN))

OPERATIONS: dict[str, Operation] = {
    # name: Operation(run, (guest of A, member of B, member of A, moderator of A, owner of A, bot), scopes)
    "rooms.get_room_access(A)": Operation(access_a, (OK, NF, OK, OK, OK, NF), reads_only=True, scopes=R),
    "chat.list_messages(A)": Operation(history_a, (OK, NF, OK, OK, OK, NF), reads_only=True, scopes=R),
    "chat.catch_up(A)": Operation(since_a, (OK, NF, OK, OK, OK, NF), reads_only=True, scopes=R),
    "membership.list_participants(A)": Operation(participants_a, (OK, NF, OK, OK, OK, NF), reads_only=True, scopes=R),
    "live.watch(A)": Operation(watch_a, (OK, NF, OK, OK, OK, NF), scopes=R),
    "chat.post_message(A)": Operation(post_a, (OK, NF, OK, OK, OK, NF), scopes=W),
    "chat.update_message(A, own)": Operation(edit_own_message, (OK, NF, OK, OK, OK, NF), scopes=W),
    "chat.update_message(A, another's)": Operation(edit_others_message, (F, NF, F, F, F, NF), scopes=W),
    "chat.delete_message(A, own)": Operation(delete_own_message, (OK, NF, OK, OK, OK, NF), scopes=W),
    "chat.delete_message(A, another's)": Operation(delete_others_message, (F, NF, F, OK, OK, NF), scopes=W | ADM),
    "membership.join(A)": Operation(join_a, (OK, NF, OK, OK, OK, NF), scopes=W),
    # the last owner must hand over first
    "membership.leave(A)": Operation(leave_a, (OK, NF, OK, OK, Conflict, NF), scopes=W),
    "membership.add_bot(A)": Operation(add_bot, (F, NF, F, OK, OK, NF), scopes=ADM),
    "invites.create_invite(A)": Operation(create_invite, (F, NF, F, OK, OK, NF), scopes=ADM),
    "webhooks.create_webhook(A)": Operation(create_webhook, (F, NF, F, F, OK, NF), scopes=ADM),
    "webhooks.list_webhooks(A)": Operation(
        list_webhooks, (F, NF, F, F, OK, NF), prepare=owner_makes_a_webhook, reads_only=True, scopes=ADM
    ),
    "webhooks.revoke_webhook(A)": Operation(
        revoke_webhook, (F, NF, F, F, OK, NF), prepare=owner_makes_a_webhook, scopes=ADM
    ),
    "bot_hooks.set_bot_calls(A)": Operation(
        set_bot_calls, (F, NF, F, OK, OK, NF), prepare=owner_adds_a_bot, scopes=ADM
    ),
    "invites.create_invite(A, members may invite)": Operation(
        create_invite, (F, NF, OK, OK, OK, NF), prepare=allow_members_to_invite, scopes=ADM
    ),
    "invites.list_invites(A)": Operation(list_invites, (F, NF, F, OK, OK, NF), reads_only=True, scopes=ADM),
    "invites.revoke_invite(A)": Operation(revoke_invite, (F, NF, F, OK, OK, NF), scopes=ADM),
    # a valid link lets anyone in, but not a bot: a room's moderators add bots
    "invites.accept_as_user(A's link)": Operation(follow_link, (OK, OK, OK, OK, OK, F), scopes=W),
    "membership.update_role(A)": Operation(set_role, (F, NF, F, F, OK, NF), scopes=ADM),
    "membership.remove_participant(A)": Operation(remove_participant, (F, NF, F, OK, OK, NF), scopes=ADM),
    "membership.list_removed_participants(A)": Operation(
        list_removed, (F, NF, F, OK, OK, NF), prepare=owner_removes_the_victim, scopes=ADM
    ),
    "membership.readmit(A)": Operation(
        readmit, (F, NF, F, OK, OK, NF), prepare=moderator_removes_the_victim, scopes=ADM
    ),
    "membership.readmit(A, removed by an owner)": Operation(
        readmit, (F, NF, F, F, OK, NF), prepare=owner_removes_the_victim, scopes=ADM
    ),
    "room_settings.update(A, name)": Operation(rename_a, (F, NF, F, F, OK, NF), scopes=ADM),
    "rooms.delete_room(A)": Operation(delete_room_a, (F, NF, F, F, OK, NF), scopes=ADM),
    "room_settings.update(A, options)": Operation(set_options, (F, NF, F, F, OK, NF), scopes=ADM),
    "ai_settings.get_ai_settings(A)": Operation(ai_settings_view, (OK, NF, OK, OK, OK, NF), reads_only=True, scopes=R),
    "room_settings.update(A, AI)": Operation(ai_settings_update, (F, NF, F, F, OK, NF), scopes=ADM),
    "ai_settings.list_ai_usage(A)": Operation(ai_settings_usage, (F, NF, F, F, OK, NF), reads_only=True, scopes=ADM),
    "ai.start_reply(A)": Operation(ai_start, (OK, NF, OK, OK, OK, NF), scopes=AI),
    "ai.start_reply(A, guests may not use the AI)": Operation(
        ai_start, (F, NF, OK, OK, OK, NF), prepare=forbid_guests_the_ai, scopes=AI
    ),
    "ai.stop_reply(A)": Operation(ai_stop, (OK, NF, OK, OK, OK, NF), reads_only=True, scopes=AI),
    # anyone in the room may stop a reply, guests too, even where they may not ask the AI
    "ai.stop_reply(A, guests may not use the AI)": Operation(
        ai_stop, (OK, NF, OK, OK, OK, NF), prepare=forbid_guests_the_ai, scopes=AI
    ),
    "ai.regenerate_reply(A)": Operation(ai_regenerate, (OK, NF, OK, OK, OK, NF), scopes=AI),
    # a bot sees only the rooms it was added to, public ones too
    "rooms.get_room_access(B, public)": Operation(access_b, (NF, OK, OK, OK, OK, NF), reads_only=True, scopes=R),
    "chat.list_messages(B, public)": Operation(history_b, (NF, OK, OK, OK, OK, NF), reads_only=True, scopes=R),
    "membership.join(B, public)": Operation(join_b, (NF, OK, OK, OK, OK, NF), scopes=W),
    "chat.post_message(B, public, not joined)": Operation(post_b, (NF, OK, F, F, F, NF), scopes=W),
    "rooms.create_room": Operation(create_room, (F, OK, OK, OK, OK, F), scopes=W),
    # its own world: B among the 100 newest public rooms
    "rooms.lobby": Operation(lobby, (OK, OK, OK, OK, OK, OK), scopes=R),
    "accounts.sign_up_guest": Operation(sign_up_guest, (OK, F, F, F, F, F)),
    "accounts.change_password": Operation(change_password, (F, OK, OK, OK, OK, F)),  # at a browser only
    "accounts.sign_out_everywhere": Operation(sign_out_everywhere, (F, OK, OK, OK, OK, F)),  # at a browser only
    "accounts.change_display_name": Operation(change_display_name, (F, OK, OK, OK, OK, OK), scopes=ADM),
}

CELLS = [pytest.param(name, role, id=f"{name}-as-{role}") for name in OPERATIONS for role in (*ROLES, *TOKEN_ROLES)]


def acting(w: World, op: Operation, role: str) -> tuple[Actor, str, object]:
    """The cell's actor, the role whose participant and message it uses, and the outcome expected."""
    if role not in TOKEN_ROLES:
        return w.actors[role], role, op.expected[ROLES.index(role)]
    if not op.scopes:
        scopes, expected = ALL_SCOPES, op.token_refusal
    elif role == TOKEN_WITHOUT_SCOPE:
        scopes, expected = ALL_SCOPES - {max(op.scopes, key=SCOPE_RANK.index)}, MissingScope
    else:
        scopes, expected = op.scopes, op.expected[ROLES.index(OWNER)]
    return replace(w.users.owner, scopes=scopes, token_id=w.users.owner_token_id), OWNER, expected


def _name(outcome) -> str:
    return outcome if isinstance(outcome, str) else outcome.__name__


@pytest.mark.parametrize(("operation", "role"), CELLS)
async def test_cell(backend: Backend, operation: str, role: str) -> None:
    op = OPERATIONS[operation]
    cell = f"{operation} as {role}"
    if op.reads_only:  # a fresh world per cell only where a cell may change it
        if backend.reading_world is None:
            backend.reading_world = await build_world(backend)
        w = backend.reading_world
    else:
        w = await build_world(backend)
    me, as_role, expected = acting(w, op, role)
    try:
        if op.prepare is not None:
            await op.prepare(w)
        before = snapshot(w) if expected != OK or op.reads_only else None
        try:
            await op.run(w, me, as_role)
            got, why = OK, ""
        except DomainError as error:
            got, why = type(error), f" ({error.message})"
        except AssertionError as error:
            raise AssertionError(f"{cell}: allowed, but it did not do what it should: {error}") from error
        assert got == expected, f"{cell}: expected {_name(expected)}, got {_name(got)}{why}"
        if before is not None:
            assert snapshot(w) == before, f"{cell}: {_name(got)}, but the database changed"
            await w.runtime.pubsub.settled()  # the AI has decided whether to answer
            started = await w.s.ai.get_reply_in_progress(w.users.owner, w.a.id)
            assert started is None, f"{cell}: {_name(got)}, but an AI reply started"
    finally:
        await settle(w)


def test_every_operation_has_an_outcome_for_every_role() -> None:
    for name, op in OPERATIONS.items():
        assert len(op.expected) == len(ROLES), name
        assert all(e == OK or (isinstance(e, type) and issubclass(e, DomainError)) for e in op.expected), name


# ---------------------------------------------------------------------------------------------------
# Anonymous visitors
# ---------------------------------------------------------------------------------------------------

# The operations that take no Actor: what an anonymous visitor can call. Everything else needs an Actor.
ANONYMOUS_ENTRY_POINTS = {
    (Accounts, "sign_up"),
    (Accounts, "create_user"),  # the CLI's
    (Accounts, "sign_in"),
    (Accounts, "authenticate"),
    (Accounts, "authenticate_guest"),
    (Accounts, "require_actor"),
    (Accounts, "sign_out"),
    (Accounts, "sign_out_guest"),
    (Invites, "get_invite_preview"),
    (Invites, "accept_as_guest"),  # takes the browser's guest Actor when there is one
    (AiReplies, "wait_until_answered"),  # returns nothing: a wait for a room's reply to end (shutdown, tests)
    (AiReplies, "sweep_lost_replies"),  # the server's own upkeep: saves replies whose process died
    (AiReplies, "stop_sweeping"),  # the server stops
    (ApiTokens, "authenticate_token"),
    (ApiTokens, "operator_acts_as"),  # the command line's: whoever runs the server
    (IncomingWebhooks, "post_via_webhook"),  # its secret URL is the capability
    (OutgoingHooks, "stop"),  # the server's shutdown
    (OutgoingHooks, "wait_idle"),  # returns nothing: a wait for the calls under way (shutdown, tests)
}


def test_only_token_and_form_operations_work_without_an_actor() -> None:
    """Every public domain operation takes an Actor first, except the known anonymous entry points.
    A new operation without an Actor must be added to ANONYMOUS_ENTRY_POINTS (and to the matrix)."""
    without_actor = set()
    for service in (
        Accounts,
        Rooms,
        Membership,
        Chat,
        Invites,
        AiReplies,
        AiSettings,
        RoomSettings,
        LiveRooms,
        ApiTokens,
        IncomingWebhooks,
        OutgoingHooks,
    ):
        for name, function in inspect.getmembers(service, inspect.iscoroutinefunction):
            if name.startswith("_"):
                continue
            params = list(inspect.signature(function).parameters.values())[1:]
            if not params or params[0].annotation not in ("Actor", Actor):
                without_actor.add((service, name))
    assert without_actor == ANONYMOUS_ENTRY_POINTS


async def test_anonymous_visitors_get_no_actor_from_missing_or_forged_tokens(runtime) -> None:
    accounts = runtime.services.accounts
    _, user_token = await sign_up(runtime, "olga")
    room = await runtime.services.rooms.create_room(await accounts.authenticate(user_token), name="A", private=True)
    link = await runtime.services.invites.create_invite(await accounts.authenticate(user_token), room.id)
    guest_token = (await runtime.services.invites.accept_as_guest(link.token, "Gwen")).token
    forged = [None, "", "garbage", "x" * 43, user_token[:-1] + ("A" if user_token[-1] != "A" else "B")]
    for token in forged:
        assert await accounts.authenticate(token) is None, token
        assert await accounts.authenticate_guest(token) is None, token
        with pytest.raises(NotAuthenticated):
            await accounts.require_actor(token)
    # A session of one kind is no key to the other.
    assert await accounts.authenticate(guest_token) is None
    assert await accounts.authenticate_guest(user_token) is None
    assert (await accounts.authenticate(user_token)).username == "olga"
    assert (await accounts.authenticate_guest(guest_token)).display_name == "Gwen"


async def test_anonymous_visitors_can_preview_and_follow_only_a_valid_link(runtime) -> None:
    owner, _ = await sign_up(runtime, "olga")
    invites = runtime.services.invites
    room = await runtime.services.rooms.create_room(owner, name="Secret plans", private=True)
    link = await invites.create_invite(owner, room.id)
    assert (await invites.get_invite_preview(link.token)).room_name == "Secret plans"
    messages = set()
    for bad in ("garbage", "", link.token[:-1] + ("A" if link.token[-1] != "A" else "B"), link.token + "x"):
        with pytest.raises(InviteInvalid) as refused:
            await invites.get_invite_preview(bad)
        messages.add(refused.value.message)
        with pytest.raises(InviteInvalid):
            await invites.accept_as_guest(bad, "Mallory")
    assert len(messages) == 1
    assert [i.uses for i in await invites.list_invites(owner, room.id)] == [0]  # nothing above counted
    guest = (await invites.accept_as_guest(link.token, "Gwen")).actor  # the one way in: a valid link
    assert (await runtime.services.rooms.get_room_access(guest, room.id)).me.role is Role.GUEST

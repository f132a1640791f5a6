"""The room socket's authorization grid: connecting, every join and every push a client may send, tried
anonymously, with a bad, revoked or expired token, with a token lacking the operation's scope, as a bot
added to no room, without joining first, and as a member, a moderator and the owner of a private room,
through a real `python -m chatapp` on SQLite and on PostgreSQL (its AI on the fake provider). A refused
cell answers the REST API's error code and leaves the database as it was.

(Guests have no tokens: a guest reaches the socket's rooms only as a browser tab, whose presence the
socket shows. The domain matrix, tests/domain/test_authorization_matrix.py, holds every operation x role,
guests included; this grid proves the socket maps each outcome to its reply and lets nothing past.)
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import websockets
from sqlalchemy import text

from chatapp.app import Runtime
from chatapp.domain.ai_models import ReplyRecord
from chatapp.domain.models import MessageStatus, Scope
from chatapp.domain.ports import utc_now
from tests.api.conftest import running_server
from tests.api.test_rest_authorization import snapshot
from tests.api.test_socket import Client, socket_url
from tests.browser.conftest import RunningApp
from tests.conftest import fresh_postgres_database
from tests.domain.helpers import sign_up
from tests.fake_llm import FakeLLM, Script

ROLES = ("member", "moderator", "owner")
ALL = ["read", "write", "ai", "admin"]
OK = "ok"
WORLDS = itertools.count()  # worlds in one database differ by number (in their names)


@dataclass(frozen=True)
class Op:
    """One thing a client does on the socket: a join (`event` None) or a push to a joined topic."""

    name: str
    topic: str  # "room" (private room A), "mine" (my own user topic), "theirs" (the victim's)
    event: str | None
    payload: Callable[[World, str], dict[str, Any]]  # for the world and the acting role
    scope: Scope | None  # what the token needs; None: any valid token
    outcomes: tuple[str, str, str]  # member, moderator, owner: "ok" or the error code
    changes: bool  # an allowed cell changes the database (so each role gets a world of its own)


def nothing(_world: World, _role: str) -> dict[str, Any]:
    return {}


OPS = [
    Op("join room", "room", None, nothing, Scope.READ, (OK, OK, OK), False),
    Op("join my user topic", "mine", None, nothing, Scope.READ, (OK, OK, OK), False),
    Op("join another's user topic", "theirs", None, nothing, None, ("not_found",) * 3, False),
    Op(
        "post",
        "room",
        "post",
        lambda w, r: {"body": f"hi from {r}", "client_message_id": "grid-0001"},
        Scope.WRITE,
        (OK, OK, OK),
        True,
    ),
    Op(
        "edit my message",
        "room",
        "edit",
        lambda w, r: {"message_id": w.mine[r], "body": "fixed"},
        Scope.WRITE,
        (OK, OK, OK),
        True,
    ),
    Op(
        "edit another's message",
        "room",
        "edit",
        lambda w, r: {"message_id": w.victim_msg, "body": "not mine"},
        Scope.WRITE,
        ("forbidden",) * 3,
        True,
    ),
    Op("delete my message", "room", "delete", lambda w, r: {"message_id": w.mine[r]}, Scope.WRITE, (OK, OK, OK), True),
    Op(
        "delete another's message",
        "room",
        "delete",
        lambda w, r: {"message_id": w.victim_msg},
        Scope.ADMIN,
        ("forbidden", OK, OK),
        True,
    ),
    Op("ask the AI", "room", "ask_ai", nothing, Scope.AI, (OK, OK, OK), True),
    Op("stop the AI", "room", "stop_ai", nothing, Scope.AI, (OK, OK, OK), False),
    Op("regenerate the AI's reply", "room", "regenerate_ai", nothing, Scope.AI, (OK, OK, OK), True),
    Op("an unknown event", "room", "fly", nothing, None, ("not_found",) * 3, False),
]


@dataclass
class World:
    """Owner, moderator and member of private room A, and a victim whose message is the target; the AI's
    earlier reply there; a token with every scope for each and for a bot (of the victim's) in no room."""

    app: RunningApp
    runtime: Runtime
    n: int
    room_id: int
    victim_id: int  # the victim's user id (their user topic)
    victim_msg: int
    mine: dict[str, int]  # role -> a message of their own
    tokens: dict[str, str]  # role (and "bot") -> a token with every scope
    actors: dict[str, Any]

    def topic(self, op: Op, role: str) -> str:
        if op.topic == "room":
            return f"room:{self.room_id}"
        user_id = self.victim_id if op.topic == "theirs" else self.actors[role].user_id
        return f"user:{user_id}"

    async def token(self, role: str, scopes: list[str]) -> str:
        return (await self.runtime.services.tokens.create_token(self.actors[role], name="n", scopes=scopes)).value


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningApp, Runtime]]:
    """One server per database for the whole grid, its AI answering from the fake provider."""
    data: Path = tmp_path_factory.mktemp(f"socket-grid-{request.param}") / "data"
    data.mkdir()
    with ExitStack() as stack:
        url = None
        if request.param == "postgres":
            url = stack.enter_context(fresh_postgres_database(request.getfixturevalue("postgres_server")))
        fake = stack.enter_context(FakeLLM())
        fake.set_default(Script(reply="An answer.", tokens_per_second=200))
        env = {"CHATAPP_AI_MODEL": "openai/fake-model", "CHATAPP_AI_API_BASE": fake.base_url, "CHATAPP_AI_API_KEY": "k"}
        yield stack.enter_context(running_server(data, env, url))


async def new_world(served: tuple[RunningApp, Runtime]) -> World:
    app, runtime = served
    s, n = runtime.services, next(WORLDS)
    names = {"owner": f"olga{n}", "moderator": f"max{n}", "member": f"mia{n}", "victim": f"vic{n}"}
    actors = {role: (await sign_up(runtime, name))[0] for role, name in names.items()}
    room = await s.rooms.create_room(actors["owner"], name="A", private=True)
    link = await s.invites.create_invite(actors["owner"], room.id)
    for role in ("moderator", "member", "victim"):
        await s.invites.accept_as_user(actors[role], link.token)
    people = {p.user_id: p.id for p in await s.membership.list_participants(actors["owner"], room.id)}
    await s.membership.update_role(actors["owner"], room.id, people[actors["moderator"].user_id], "moderator")
    victim_msg = (await s.chat.post_message(actors["victim"], room.id, "the victim's words")).id
    mine = {role: (await s.chat.post_message(actors[role], room.id, f"{role}'s words")).id for role in ROLES}
    await runtime.tx.run(lambda uow: _seed_ai_reply(uow, room.id), write=True)
    bot = await s.tokens.create_bot(actors["victim"], username=f"lonely{n}", display_name="Lonely")
    tokens = {"bot": (await s.tokens.create_token(actors["victim"], name="b", scopes=ALL, bot_id=bot.id)).value}
    for role in ROLES:
        tokens[role] = (await s.tokens.create_token(actors[role], name="all", scopes=ALL)).value
    victim_id = actors["victim"].user_id
    return World(app, runtime, n, room.id, victim_id, victim_msg, mine, tokens, actors)


def _seed_ai_reply(uow, room_id: int) -> int:
    """An earlier complete reply of the AI in the room, for regenerate."""
    ai = uow.participants.ai_of(room_id)
    record = ReplyRecord(MessageStatus.COMPLETE, "openai/fake-model", 3, 3, 10)
    added = uow.messages.add_reply(room_id=room_id, participant_id=ai.id, body="Earlier.", now=utc_now(), record=record)
    return added.id


async def attempt(world: World, op: Op, role: str, token: str, *, join_first: bool = True) -> dict[str, Any]:
    """Do the operation on a new socket; the reply of the join (for a join) or of the push."""
    async with websockets.connect(socket_url(world.app, token=token)) as ws:
        client, topic = Client(ws), world.topic(op, role)
        join_ref = "j1"
        if op.event is None or join_first:
            joined = await client.call(topic, "phx_join", {}, join_ref)
            if op.event is None or joined["status"] != "ok":
                return joined
        return await client.call(topic, op.event, op.payload(world, role), join_ref)


def outcome(reply: dict[str, Any]) -> str:
    return OK if reply["status"] == "ok" else reply["response"]["code"]


async def refused(
    world: World, op: Op, who: str, token: str, code: str, *, role: str = "owner", join_first: bool = True
) -> None:
    """The cell is refused with `code` and the database is as it was; `who` names the cell, `role` is
    whose topic and payload it uses (the owner's for tokens that are not a role's own)."""
    before = snapshot(world.runtime)
    reply = await attempt(world, op, role, token, join_first=join_first)
    cell = f"{op.name} as {who}"
    assert reply["status"] == "error" and outcome(reply) == code, f"{cell}: {reply}"
    if code == "not_found" and op.event is None:
        assert reply["response"]["reason"] == "unmatched topic", cell  # a room one may not see: like none
    assert snapshot(world.runtime) == before, f"{cell}: refused, but the database changed"


@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
async def test_operation(served, op: Op) -> None:
    """Every refusal of the operation in one world (each leaves it as it was), and its allowed cells
    that change nothing; then each role allowed to change something, in a world of its own."""
    world = await new_world(served)
    if op.scope is not None:
        narrow = await world.token("owner", [s for s in ALL if s != op.scope.value])
        await refused(world, op, "a token without its scope", narrow, "missing_scope")
    if op.topic == "room":
        await refused(world, op, "bot", world.tokens["bot"], "not_found")
    if op.event is not None:
        await refused(world, op, "owner, not joined", world.tokens["owner"], "not_found", join_first=False)
    for role, expected in zip(ROLES, op.outcomes, strict=True):
        if expected != OK:
            await refused(world, op, role, world.tokens[role], expected, role=role)
        elif not op.changes:
            assert outcome(await attempt(world, op, role, world.tokens[role])) == OK, f"{op.name} as {role}"
    for role, expected in zip(ROLES, op.outcomes, strict=True):
        if expected == OK and op.changes:
            own = await new_world(served)
            reply = await attempt(own, op, role, own.tokens[role])
            assert outcome(reply) == OK, f"{op.name} as {role}: {reply}"


async def test_no_valid_token_no_socket(served) -> None:
    """Without a token, with a made-up, revoked or expired one: the upgrade is refused, nothing changes."""
    world = await new_world(served)
    tokens = world.runtime.services.tokens
    revoked = await tokens.create_token(world.actors["owner"], name="gone", scopes=ALL)
    await tokens.revoke_token(world.actors["owner"], revoked.token.id)
    soon = datetime.now(UTC) + timedelta(hours=1)
    expired = await tokens.create_token(world.actors["owner"], name="old", scopes=ALL, expires_at=soon)
    with world.runtime.engine.begin() as conn:
        past = {"past": datetime.now(UTC) - timedelta(days=1), "id": expired.token.id}
        conn.execute(text("UPDATE api_tokens SET expires_at = :past WHERE id = :id"), past)
    before = snapshot(world.runtime)
    cases = {"no token": {}, "a bad token": {"token": "chat_" + "x" * 43}, "a revoked token": {"token": revoked.value}}
    cases["an expired token"] = {"token": expired.value}
    for who, params in cases.items():
        with pytest.raises(websockets.InvalidStatus) as refusal:
            async with websockets.connect(socket_url(world.app, **params)):
                pass
        assert refusal.value.response.status_code == 403, who  # closed before the upgrade was accepted
    assert snapshot(world.runtime) == before

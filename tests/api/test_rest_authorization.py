"""The REST API's authorization matrix: every route tried anonymously, with a bad token, with a token
lacking the route's scope, as a bot added to no room, and as a member, a moderator and the owner of a
private room, through the real app over ASGI. Denied cells leave the database as it was.

(Guests have no tokens: a guest acts only through the pages. The domain matrix, tests/domain/
test_authorization_matrix.py, holds every operation x role on both databases; this one proves the API
maps each outcome to its status and never lets a request past the domain's checks.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
from nicegui import core
from sqlalchemy import text

from chatapp.app import Runtime
from chatapp.domain.models import Scope
from tests.domain.helpers import sign_up
from tests.pages.conftest import simulated_app

API = "/api/v1"
ROLES = ("member", "moderator", "owner")
ALL = ["read", "write", "ai", "admin"]
NAMED = ("owner", "moderator", "member", "victim", "outsider")


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # {room}, {message}, {victim}, {invite}, {token}, {webhook}, {helper}, {own_bot} from the world
    scope: Scope | None  # what a token needs; None: any valid token
    statuses: tuple[int, int, int]  # member, moderator, owner of the private room
    body: dict | None = None
    room_route: bool = True  # about room A: a bot added to no room gets 404


ROUTES = [
    Route("get", "/me", None, (200, 200, 200), room_route=False),
    Route("get", "/rooms", Scope.READ, (200, 200, 200), room_route=False),
    Route("post", "/rooms", Scope.WRITE, (201, 201, 201), {"name": "Another"}, room_route=False),
    Route("get", "/rooms/{room}", Scope.READ, (200, 200, 200)),
    Route("patch", "/rooms/{room}", Scope.ADMIN, (403, 403, 200), {"topic": "new topic"}),
    Route("delete", "/rooms/{room}?confirm_name=A", Scope.ADMIN, (403, 403, 204)),
    Route("post", "/rooms/{room}/join", Scope.WRITE, (200, 200, 200)),
    Route("post", "/rooms/{room}/leave", Scope.WRITE, (204, 204, 409)),
    Route("get", "/rooms/{room}/messages", Scope.READ, (200, 200, 200)),
    Route("post", "/rooms/{room}/messages", Scope.WRITE, (201, 201, 201), {"body": "hello"}),
    Route("patch", "/rooms/{room}/messages/{message}", Scope.WRITE, (403, 403, 403), {"body": "not mine"}),
    Route("delete", "/rooms/{room}/messages/{message}", Scope.ADMIN, (403, 204, 204)),
    Route("get", "/rooms/{room}/participants", Scope.READ, (200, 200, 200)),
    Route("post", "/rooms/{room}/bots", Scope.ADMIN, (403, 201, 201), {"username": "{outsider}"}),
    Route("patch", "/rooms/{room}/participants/{victim}", Scope.ADMIN, (403, 403, 200), {"role": "moderator"}),
    Route("delete", "/rooms/{room}/participants/{victim}", Scope.ADMIN, (403, 204, 204)),
    Route("get", "/rooms/{room}/invites", Scope.ADMIN, (403, 200, 200)),
    Route("post", "/rooms/{room}/invites", Scope.ADMIN, (403, 201, 201), {}),
    Route("delete", "/rooms/{room}/invites/{invite}", Scope.ADMIN, (403, 204, 204)),
    Route("post", "/rooms/{room}/ai/reply", Scope.AI, (202, 202, 202)),
    Route("post", "/rooms/{room}/ai/stop", Scope.AI, (200, 200, 200)),
    Route("get", "/tokens", Scope.ADMIN, (200, 200, 200), room_route=False),
    Route("post", "/tokens", Scope.ADMIN, (201, 201, 201), {"name": "more", "scopes": ["read"]}, room_route=False),
    Route("delete", "/tokens/{token}", Scope.ADMIN, (404, 404, 204), room_route=False),  # the owner's token
    Route("get", "/bots", Scope.ADMIN, (200, 200, 200), room_route=False),
    Route("post", "/bots", Scope.ADMIN, (201, 201, 201), {"username": "by-{owner}", "display_name": "New"}, False),
    Route("get", "/rooms/{room}/webhooks", Scope.ADMIN, (403, 403, 200)),
    Route("post", "/rooms/{room}/webhooks", Scope.ADMIN, (403, 403, 201), {"name": "Feed"}),
    Route("delete", "/rooms/{room}/webhooks/{webhook}", Scope.ADMIN, (403, 403, 204)),
    Route("patch", "/rooms/{room}/bots/{helper}", Scope.ADMIN, (403, 200, 200), {"calls": "every"}),
    # The owner's own bot: nobody else may know it exists.
    Route("put", "/bots/{own_bot}/hook", Scope.ADMIN, (404, 404, 200), {"url": "https://example.com/b"}, False),
    Route("get", "/bots/{own_bot}/hook", Scope.ADMIN, (404, 404, 200), room_route=False),
    Route("delete", "/bots/{own_bot}/hook", Scope.ADMIN, (404, 404, 204), room_route=False),
    Route("get", "/bots/{own_bot}/hook/deliveries", Scope.ADMIN, (404, 404, 200), room_route=False),
]


@dataclass
class World:
    runtime: Runtime
    client: httpx.AsyncClient
    values: dict[str, int]
    tokens: dict[str, str]  # role -> a token with every scope
    names: dict[str, str]  # role -> username

    def path(self, route: Route) -> str:
        return API + route.path.format(**self.values)

    async def token(self, role: str, scopes: list[str]) -> str:
        tokens = self.runtime.services.tokens
        owner = await tokens.operator_acts_as(self.names[role])
        return (await tokens.create_token(owner, name="narrow", scopes=scopes)).value


@asynccontextmanager
async def new_world(settings, n: int = 0) -> AsyncIterator[World]:
    """Owner, moderator and member of private room A (and a victim, whose message and place are the
    targets); a bot of the victim's, added to no room; a token with every scope for each. Worlds in one
    database differ by `n` (in the names)."""
    async with simulated_app(settings) as (runtime, _new_user):
        s = runtime.services
        names = {
            "owner": f"olga{n}",
            "moderator": f"max{n}",
            "member": f"mia{n}",
            "victim": f"vic{n}",
            "outsider": f"outsider{n}",
        }
        owner, moderator, member, victim = [(await sign_up(runtime, names[role]))[0] for role in NAMED[:4]]
        room = await s.rooms.create_room(owner, name="A", private=True)
        link = await s.invites.create_invite(owner, room.id)
        for who in (moderator, member, victim):
            await s.invites.accept_as_user(who, link.token)
        people = {p.user_id: p.id for p in await s.membership.list_participants(owner, room.id)}
        await s.membership.update_role(owner, room.id, people[moderator.user_id], "moderator")
        message = await s.chat.post_message(victim, room.id, "the victim's words")
        outsider = await s.tokens.create_bot(victim, username=f"outsider{n}", display_name="Outsider")
        tokens = {"bot": (await s.tokens.create_token(victim, name="bot", scopes=ALL, bot_id=outsider.id)).value}
        for role, actor in (("member", member), ("moderator", moderator), ("owner", owner)):
            tokens[role] = (await s.tokens.create_token(actor, name="all", scopes=ALL)).value
        spare = await s.tokens.create_token(owner, name="spare", scopes=["read"])
        webhook = await s.webhooks.create_webhook(owner, room.id, "Feed")
        await s.tokens.create_bot(victim, username=f"helper{n}", display_name="Helper")
        helper = await s.membership.add_bot(owner, room.id, f"helper{n}")
        own_bot = await s.tokens.create_bot(owner, username=f"own{n}", display_name="Own")
        await s.bot_hooks.set_hook(owner, own_bot.id, "https://example.com/a")
        values = {
            "room": room.id,
            "message": message.id,
            "victim": people[victim.user_id],
            "invite": link.invite.id,
            "token": spare.token.id,
            "webhook": webhook.webhook.id,
            "helper": helper.id,
            "own_bot": own_bot.id,
        }
        async with httpx.AsyncClient(transport=httpx.ASGITransport(core.app), base_url="http://test") as client:
            yield World(runtime, client, values, tokens, names)


def snapshot(runtime: Runtime) -> list:
    """What a refused request might have changed (a token's last use is noted whenever it is presented)."""
    tables = ("rooms", "participants", "messages", "invites", "users", "incoming_webhooks", "outgoing_hooks")
    queries = [f"SELECT * FROM {t} ORDER BY 1" for t in tables]
    queries.append("SELECT id, user_id, name, scopes, token_hash, expires_at FROM api_tokens ORDER BY id")
    with runtime.engine.connect() as conn:
        return [list(conn.execute(text(query))) for query in queries]


async def call(world: World, route: Route, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = None
    if route.body is not None:  # {owner}, {outsider}... in a body: this world's usernames
        body = {k: v.format(**world.names) if isinstance(v, str) else v for k, v in route.body.items()}
    return await world.client.request(route.method, world.path(route), headers=headers, json=body)


async def refused(world: World, route: Route, who: str, token: str | None, status: int, code: str) -> None:
    before = snapshot(world.runtime)
    response = await call(world, route, token)
    cell = f"{route.method.upper()} {route.path} as {who}"
    assert response.status_code == status, f"{cell}: {response.status_code} {response.text}"
    assert response.json()["error"]["code"] == code, cell
    assert snapshot(world.runtime) == before, f"{cell}: refused, but the database changed"


CODES = {403: "forbidden", 404: "not_found", 409: "conflict"}


@pytest.mark.parametrize(
    "database_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
async def test_route(settings, route: Route) -> None:
    """Every refusal of the route in one world (each leaves it as it was), and its reads; then each role
    allowed to change something, in a world of its own."""
    allowed = [role for role in ROLES if route.statuses[ROLES.index(role)] < 400]
    async with new_world(settings) as world:
        await refused(world, route, "anonymous", None, 401, "not_authenticated")
        await refused(world, route, "a bad token", "chat_" + "x" * 43, 401, "not_authenticated")
        if route.scope is not None:
            narrow = await world.token("owner", [s for s in ALL if s != route.scope.value])
            await refused(world, route, "a token without its scope", narrow, 403, "missing_scope")
        if route.room_route:
            await refused(world, route, "a bot in no room", world.tokens["bot"], 404, "not_found")
        for role in ROLES:
            status = route.statuses[ROLES.index(role)]
            if status >= 400:
                await refused(world, route, role, world.tokens[role], status, CODES[status])
            elif route.method == "get":  # reads change nothing: the same world serves
                response = await call(world, route, world.tokens[role])
                assert response.status_code == status, f"GET {route.path} as {role}: {response.text}"
    for n, role in enumerate([] if route.method == "get" else allowed, start=1):
        async with new_world(settings, n) as world:
            response = await call(world, route, world.tokens[role])
            expected = route.statuses[ROLES.index(role)]
            assert response.status_code == expected, f"{route.method} {route.path} as {role}: {response.text}"

"""The REST API of the real app over ASGI: tokens, rooms, messages, people, the AI, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from nicegui import core

from chatapp.app import Runtime
from chatapp.domain.models import Actor
from chatapp.pages.session import SESSION_COOKIE
from tests.domain.helpers import sign_up
from tests.pages.conftest import simulated_app

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
API = "/api/v1"


@pytest.fixture
async def api(settings) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    async with simulated_app(settings) as (runtime, _new_user):
        transport = httpx.ASGITransport(core.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield runtime, client


async def bearer(runtime: Runtime, owner: Actor, *scopes: str, bot_id: int | None = None) -> dict[str, str]:
    new = await runtime.services.tokens.create_token(
        owner, name="test", scopes=list(scopes or ("read", "write", "ai", "admin")), bot_id=bot_id
    )
    return {"Authorization": f"Bearer {new.value}"}


def error_code(response: httpx.Response) -> str:
    return response.json()["error"]["code"]


async def test_the_openapi_document_and_the_docs_page_are_served_without_a_cdn(api) -> None:
    _runtime, client = api
    document = (await client.get(f"{API}/openapi.json")).json()
    assert document["info"]["title"] == "chatapp API"
    assert "/rooms/{room_id}/messages" in document["paths"]
    page = await client.get(f"{API}/docs")
    assert page.status_code == 200 and "swagger-ui" in page.text
    assert "cdn" not in page.text.lower() and "https://" not in page.text
    script = await client.get(f"{API}/docs-static/swagger-ui-bundle.js")
    assert script.status_code == 200 and len(script.content) > 100_000


async def test_no_token_or_a_bad_one_is_401_in_json(api) -> None:
    _runtime, client = api
    for headers in ({}, {"Authorization": "Bearer chat_nonsense"}, {"Authorization": "Basic abc"}):
        response = await client.get(f"{API}/me", headers=headers)
        assert response.status_code == 401 and error_code(response) == "not_authenticated"
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_a_session_cookie_is_not_a_token(api) -> None:
    runtime, client = api
    _alice, session = await sign_up(runtime, "alice")
    client.cookies.set(SESSION_COOKIE, session)
    response = await client.get(f"{API}/me")
    assert response.status_code == 401


async def test_who_am_i_rooms_and_messages_round_trip(api) -> None:
    runtime, client = api
    alice, _ = await sign_up(runtime, "alice")
    headers = await bearer(runtime, alice)
    response = await client.get(f"{API}/me", headers=headers)
    me = response.json()
    assert response.status_code == 200, response.text
    assert me["username"] == "alice" and me["scopes"] == ["admin", "ai", "read", "write"]
    created = await client.post(f"{API}/rooms", headers=headers, json={"name": "Ops", "topic": "pager"})
    assert created.status_code == 201, created.text
    room = created.json()
    assert room["my_role"] == "owner" and room["visibility"] == "public"
    listed = (await client.get(f"{API}/rooms", headers=headers)).json()
    assert [r["name"] for r in listed["rooms"]] == ["Ops"]
    ids = []
    for n in range(5):
        posted = await client.post(f"{API}/rooms/{room['id']}/messages", headers=headers, json={"body": f"m{n}"})
        assert posted.status_code == 201, posted.text
        ids.append(posted.json()["id"])
    newest = (await client.get(f"{API}/rooms/{room['id']}/messages?limit=2", headers=headers)).json()
    assert [m["body"] for m in newest["messages"]] == ["m3", "m4"] and newest["has_older"]
    older = (await client.get(f"{API}/rooms/{room['id']}/messages?limit=2&before_id={ids[3]}", headers=headers)).json()
    assert [m["body"] for m in older["messages"]] == ["m1", "m2"]
    after = (await client.get(f"{API}/rooms/{room['id']}/messages?after_id={ids[0]}&limit=3", headers=headers)).json()
    assert [m["body"] for m in after["messages"]] == ["m1", "m2", "m3"] and after["has_newer"]


async def test_a_retry_with_the_same_client_message_id_returns_the_first_message(api) -> None:
    runtime, client = api
    alice, _ = await sign_up(runtime, "alice")
    headers = await bearer(runtime, alice)
    room = await runtime.services.rooms.create_room(alice, name="Ops")
    body = {"body": "deploy done", "client_message_id": "script-0001"}
    first = await client.post(f"{API}/rooms/{room.id}/messages", headers=headers, json=body)
    again = await client.post(f"{API}/rooms/{room.id}/messages", headers=headers, json=body)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() and first.json()["client_message_id"] == "script-0001"
    page = await runtime.services.chat.list_messages(alice, room.id)
    assert [m.body for m in page.messages] == ["deploy done"]


async def test_edit_own_message_and_delete(api) -> None:
    runtime, client = api
    alice, _ = await sign_up(runtime, "alice")
    bob, _ = await sign_up(runtime, "bob")
    room = await runtime.services.rooms.create_room(alice, name="Ops")
    await runtime.services.membership.join(bob, room.id)
    mine = await runtime.services.chat.post_message(bob, room.id, "typo")
    bob_headers, alice_headers = await bearer(runtime, bob), await bearer(runtime, alice)
    url = f"{API}/rooms/{room.id}/messages/{mine.id}"
    edited = await client.patch(url, headers=bob_headers, json={"body": "fixed"})
    assert edited.status_code == 200 and edited.json()["body"] == "fixed" and edited.json()["edited_at"]
    refused = await client.patch(url, headers=alice_headers, json={"body": "not yours"})
    assert refused.status_code == 403 and error_code(refused) == "forbidden"
    assert (await client.delete(url, headers=alice_headers)).status_code == 204  # the owner moderates
    assert (await client.delete(url, headers=alice_headers)).status_code == 404


async def test_missing_scope_is_403_naming_it_and_nothing_changes(api) -> None:
    runtime, client = api
    alice, _ = await sign_up(runtime, "alice")
    reader = await bearer(runtime, alice, "read")
    room = await runtime.services.rooms.create_room(alice, name="Ops")
    response = await client.post(f"{API}/rooms/{room.id}/messages", headers=reader, json={"body": "hi"})
    assert response.status_code == 403 and response.json()["error"]["scope"] == "write"
    assert (await runtime.services.chat.list_messages(alice, room.id)).messages == []
    assert (await client.get(f"{API}/rooms/{room.id}", headers=reader)).status_code == 200


async def test_rooms_one_may_not_see_are_404_never_403(api) -> None:
    runtime, client = api
    alice, _ = await sign_up(runtime, "alice")
    bob, _ = await sign_up(runtime, "bob")
    secret = await runtime.services.rooms.create_room(alice, name="Secret", private=True)
    headers = await bearer(runtime, bob)
    for method, path in (("get", ""), ("get", "/messages"), ("post", "/join"), ("get", "/participants")):
        response = await client.request(method, f"{API}/rooms/{secret.id}{path}", headers=headers)
        assert response.status_code == 404 and error_code(response) == "not_found", path
    assert (await client.get(f"{API}/rooms/999999", headers=headers)).status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/rooms", {"name": ""}),
        ("post", "/rooms", {"name": 5}),
        ("post", "/rooms", {"name": "x", "extra": 1}),
        ("post", "/rooms/{room}/messages", {"body": ""}),
        ("post", "/rooms/{room}/messages", {"body": "x" * 100_000}),
        ("post", "/rooms/{room}/messages", {"body": "x", "client_message_id": "short"}),
        ("get", "/rooms/{room}/messages?limit=100000", None),
        ("get", "/rooms/{room}/messages?before_id=-1", None),
        ("get", "/rooms/{room}/messages?before_id=99999999999999999999", None),
        ("get", "/rooms/notanumber", None),
        ("post", "/rooms/270646512941835124736/leave", None),  # found by schemathesis: a 500 before the fix
        ("patch", "/rooms/270646512941835124736/participants/1", {"role": "member"}),
        ("delete", "/rooms/{room}/participants/270646512941835124736", None),
        ("post", "/rooms/270646512941835124736/bots", {"username": "nobody"}),
        ("patch", "/rooms/{room}", {"ai_mode": "sometimes"}),
        ("post", "/tokens", {"name": "x", "scopes": ["everything"]}),
        ("post", "/tokens", {"name": "x", "scopes": ["read"], "expires_at": "yesterday"}),
    ],
)
async def test_bad_input_is_a_clear_4xx_never_a_500(api, method: str, path: str, body: object) -> None:
    runtime, client = api
    alice, _ = await sign_up(runtime, "alice")
    headers = await bearer(runtime, alice)
    room = await runtime.services.rooms.create_room(alice, name="Ops")
    response = await client.request(method, API + path.format(room=room.id), headers=headers, json=body)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"]["message"]
    assert (await runtime.services.rooms.get_room_access(alice, room.id)).room.name == "Ops"


async def test_tokens_and_bots_through_the_api(api) -> None:
    runtime, client = api
    alice, _ = await sign_up(runtime, "alice")
    headers = await bearer(runtime, alice, "admin")
    bot = await client.post(f"{API}/bots", headers=headers, json={"username": "deploybot", "display_name": "Deploy"})
    assert bot.status_code == 201 and bot.json()["is_bot"]
    made = await client.post(
        f"{API}/tokens",
        headers=headers,
        json={"name": "deploy", "scopes": ["read", "write"], "bot_id": bot.json()["id"]},
    )
    assert made.status_code == 201
    bot_headers = {"Authorization": f"Bearer {made.json()['value']}"}
    me = (await client.get(f"{API}/me", headers=bot_headers)).json()
    assert me["is_bot"] and me["username"] == "deploybot"
    room = await runtime.services.rooms.create_room(alice, name="Ops")
    room_admin = await bearer(runtime, alice)
    added = await client.post(f"{API}/rooms/{room.id}/bots", headers=room_admin, json={"username": "deploybot"})
    assert added.status_code == 201 and added.json()["kind"] == "bot"
    posted = await client.post(f"{API}/rooms/{room.id}/messages", headers=bot_headers, json={"body": "deployed"})
    assert posted.status_code == 201 and posted.json()["author_kind"] == "bot"
    listed = (await client.get(f"{API}/tokens", headers=headers)).json()
    assert {t["name"] for t in listed} == {"test", "deploy"} and all("value" not in t for t in listed)
    revoked = await client.delete(f"{API}/tokens/{made.json()['token']['id']}", headers=headers)
    assert revoked.status_code == 204
    assert (await client.get(f"{API}/me", headers=bot_headers)).status_code == 401


async def test_posting_too_fast_is_429_with_retry_after(api) -> None:
    runtime, client = api
    alice, _ = await sign_up(runtime, "alice")
    headers = await bearer(runtime, alice)
    room = await runtime.services.rooms.create_room(alice, name="Ops")
    statuses = []
    for n in range(runtime.settings.message_burst + 2):
        response = await client.post(f"{API}/rooms/{room.id}/messages", headers=headers, json={"body": f"{n}"})
        statuses.append(response.status_code)
    assert statuses[-1] == 429 and error_code(response) == "rate_limited"
    assert int(response.headers["retry-after"]) >= 1

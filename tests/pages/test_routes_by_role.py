"""Every page route of a room, tried by each kind of visitor through the real app (in-process ASGI):
an anonymous visitor, a guest of room A, a member of room B, a member, a moderator and the owner of A.
(The domain operations themselves: tests/domain/test_authorization_matrix.py.)"""

from __future__ import annotations

import pytest

from chatapp.pages.session import GUEST_COOKIE, SESSION_COOKIE
from tests.domain.helpers import PASSWORD
from tests.pages.conftest import signed_up

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

ROLES = ["anonymous", "guest_of_a", "member_of_b", "member_of_a", "moderator_of_a", "owner_of_a"]
SIGN_IN = "sign-in"  # a redirect to the sign-in page


async def actor_of(runtime, username: str):
    session = await runtime.services.accounts.sign_in(username=username, password=PASSWORD)
    return await runtime.services.accounts.authenticate(session.token)


@pytest.fixture
async def world(app):
    """Room A (private) with its owner, a moderator, a member and a guest; room B (private) with its member."""
    runtime, new_user = app
    users = {role: new_user() if role == "anonymous" else None for role in ROLES}
    for role, name in [
        ("owner_of_a", "olga"),
        ("moderator_of_a", "moe"),
        ("member_of_a", "mia"),
        ("member_of_b", "ben"),
    ]:
        users[role] = await signed_up(new_user, name, name.title())
    owner, mo, mia, ben = [await actor_of(runtime, n) for n in ("olga", "moe", "mia", "ben")]
    rooms = runtime.services.rooms
    membership = runtime.services.membership
    room_a = await rooms.create_room(owner, name="Room A", private=True)
    room_b = await rooms.create_room(ben, name="Room B", private=True)
    link = await runtime.services.invites.create_invite(owner, room_a.id)
    for actor in (mo, mia):
        await runtime.services.invites.accept_as_user(actor, link.token)
    moderator = next(p for p in await membership.list_participants(owner, room_a.id) if p.display_name == "Moe")
    await membership.update_role(owner, room_a.id, moderator.id, "moderator")
    guest = new_user()
    response = await guest.http_client.post(f"/join/{link.token}/accept", data={"display_name": "Gwen"})
    assert response.status_code == 303 and guest.http_client.cookies.get(GUEST_COOKIE)
    users["guest_of_a"] = guest
    return users, room_a, room_b, link.token


def outcome(response) -> int | str:
    if response.status_code in (302, 303, 307) and "/sign-in" in response.headers["location"]:
        return SIGN_IN
    return response.status_code


ROUTES = {
    # route: expected outcome per role, in ROLES order
    "GET /": [SIGN_IN, 200, 200, 200, 200, 200],
    "GET /rooms/A": [SIGN_IN, 200, 404, 200, 200, 200],
    "GET /rooms/B": [SIGN_IN, 404, 200, 404, 404, 404],
    "GET /rooms/unknown": [SIGN_IN, 404, 404, 404, 404, 404],
    "GET /join/<valid link>": [200, 303, 200, 303, 303, 303],  # those already in go straight to the room
    "GET /join/<unknown link>": [404, 404, 404, 404, 404, 404],
    "GET /account": [SIGN_IN, SIGN_IN, 200, 200, 200, 200],
    "POST /auth/password": [SIGN_IN, SIGN_IN, 303, 303, 303, 303],
}


@pytest.mark.parametrize("route", list(ROUTES))
async def test_route_by_role(world, route):
    users, room_a, room_b, token = world
    method, path = route.split(" ", 1)
    path = (
        path.replace("/rooms/A", f"/rooms/{room_a.id}")
        .replace("/rooms/B", f"/rooms/{room_b.id}")
        .replace("/rooms/unknown", "/rooms/999999")
        .replace("<valid link>", token)
        .replace("<unknown link>", "x" * 43)
    )
    seen = {}
    for role in ROLES:
        client = users[role].http_client
        if method == "GET":
            response = await client.get(path)
        else:
            response = await client.post(path, data={"current_password": "wrong", "new_password": "x"})
        seen[role] = outcome(response)
    assert seen == dict(zip(ROLES, ROUTES[route], strict=True)), route


async def test_following_a_link_again_changes_nothing_for_those_already_in(world, app):
    runtime, _ = app
    users, room_a, _, token = world
    owner = await actor_of(runtime, "olga")
    before = await runtime.services.membership.list_participants(owner, room_a.id)
    for role in ("guest_of_a", "member_of_a", "moderator_of_a", "owner_of_a"):
        response = await users[role].http_client.post(f"/join/{token}/accept", data={"display_name": "Again"})
        assert response.status_code == 303 and response.headers["location"] == f"/rooms/{room_a.id}", role
    after = await runtime.services.membership.list_participants(owner, room_a.id)
    assert [(p.id, p.role) for p in after] == [(p.id, p.role) for p in before]
    (invite,) = await runtime.services.invites.list_invites(owner, room_a.id)
    assert invite.uses == 3  # Moe, Mia and the guest Gwen: returning visitors are not counted again


async def test_a_revoked_link_still_leads_those_already_in_back_to_the_room(world, app):
    runtime, _ = app
    users, room_a, _, token = world
    owner = await actor_of(runtime, "olga")
    (invite,) = await runtime.services.invites.list_invites(owner, room_a.id)
    await runtime.services.invites.revoke_invite(owner, room_a.id, invite.id)
    for role in ("guest_of_a", "member_of_a", "owner_of_a"):
        response = await users[role].http_client.get(f"/join/{token}")
        assert response.status_code == 303 and response.headers["location"] == f"/rooms/{room_a.id}", role
    for role in ("anonymous", "member_of_b"):
        response = await users[role].http_client.get(f"/join/{token}")
        assert response.status_code == 404 and "This invite link is not valid" in response.text, role
        assert "Room A" not in response.text


async def test_a_member_of_another_room_who_follows_the_link_becomes_a_member(world, app):
    runtime, _ = app
    users, room_a, _, token = world
    response = await users["member_of_b"].http_client.post(f"/join/{token}/accept", data={})
    assert response.status_code == 303 and response.headers["location"] == f"/rooms/{room_a.id}"
    page = await users["member_of_b"].http_client.get(f"/rooms/{room_a.id}")
    assert page.status_code == 200
    ben = await actor_of(runtime, "ben")
    assert (await runtime.services.rooms.get_room_access(ben, room_a.id)).me.role.value == "member"


async def test_a_guest_who_signs_up_keeps_their_participant_and_messages_and_guest_role(world, app):
    runtime, _ = app
    users, room_a, _, _ = world
    guest = users["guest_of_a"]
    owner = await actor_of(runtime, "olga")
    gwen = next(
        p for p in await runtime.services.membership.list_participants(owner, room_a.id) if p.display_name == "Gwen"
    )
    guest_actor = await runtime.services.accounts.authenticate_guest(guest.http_client.cookies.get(GUEST_COOKIE))
    await runtime.services.chat.post_message(guest_actor, room_a.id, "hello from a guest")
    form = await guest.http_client.get("/sign-up")
    assert "You are in as the guest Gwen" in form.text
    response = await guest.http_client.post(
        "/auth/sign-up", data={"username": "gwen", "display_name": "Gwen", "password": PASSWORD}
    )
    assert response.status_code == 303 and guest.http_client.cookies.get(SESSION_COOKIE)
    assert not guest.http_client.cookies.get(GUEST_COOKIE)
    account = await actor_of(runtime, "gwen")
    access = await runtime.services.rooms.get_room_access(account, room_a.id)
    assert access.me.id == gwen.id and access.me.role.value == "guest" and access.me.kind.value == "user"
    history = await runtime.services.chat.list_messages(account, room_a.id)
    assert [(m.body, m.participant_id) for m in history.messages] == [("hello from a guest", gwen.id)]


async def test_an_unknown_address_gets_the_apps_own_not_found_page(world):
    users, *_ = world
    for role in ("anonymous", "member_of_a"):
        response = await users[role].http_client.get("/no/such/page")
        assert response.status_code == 404, role
        assert "Page not found" in response.text and "Back to your rooms" in response.text
        assert "HTTPException" not in response.text


async def test_a_user_changes_their_display_name_on_the_account_page(world):
    users, room_a, *_ = world
    mia = users["member_of_a"].http_client
    response = await mia.post("/auth/display-name", data={"display_name": "Mia Wallace"})
    assert response.status_code == 303 and response.headers["location"].startswith("/account")
    page = await mia.get(response.headers["location"])
    assert "Your display name is now Mia Wallace." in page.text
    room = await mia.get(f"/rooms/{room_a.id}")
    assert "Mia Wallace" in room.text
    response = await mia.post("/auth/display-name", data={"display_name": "x" * 65})
    page = await mia.get(response.headers["location"])
    assert "Display name must be at most 64 characters." in page.text and "x" * 65 in page.text  # kept to fix
    guest = users["guest_of_a"].http_client
    response = await guest.post("/auth/display-name", data={"display_name": "Someone"})
    assert "/sign-in" in response.headers["location"]  # guests have no account page

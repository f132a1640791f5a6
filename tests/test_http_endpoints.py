"""The plain HTTP endpoints of the real app, driven in-process over ASGI: cookies, redirects, CSRF, health."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from nicegui import core
from nicegui.testing.user import User
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from chatapp.app import Runtime, migrate_database
from chatapp.domain.accounts import SignUpForm
from chatapp.pages.session import SESSION_COOKIE, Flash
from tests.conftest import make_settings
from tests.domain.helpers import PASSWORD
from tests.pages.conftest import simulated_app

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
TABLES = ("users", "sessions", "rooms", "participants", "messages")
NEW_PASSWORD = "an even better passphrase"


@pytest.fixture
async def app(settings):
    async with simulated_app(settings) as built:
        yield built


# --- helpers -----------------------------------------------------------------------------------------


def session_cookie(response: httpx.Response) -> SimpleCookie | None:
    """The parsed Set-Cookie header for the session cookie, if the response sets one."""
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(f"{SESSION_COOKIE}="):
            cookie = SimpleCookie()
            cookie.load(header)
            return cookie
    return None


def cookie_attributes(response: httpx.Response) -> dict[str, str]:
    """Attribute names (lower case) of the session cookie's Set-Cookie header, with their values."""
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(f"{SESSION_COOKIE}="):
            attributes: dict[str, str] = {}
            for part in header.split(";")[1:]:
                name, _, value = part.strip().partition("=")
                attributes[name.lower()] = value
            return attributes
    raise AssertionError(f"no {SESSION_COOKIE} cookie in {response.headers.get_list('set-cookie')}")


def token_of(user: User) -> str | None:
    return user.http_client.cookies.get(SESSION_COOKIE)


async def sign_up(user: User, username: str, **extra: str) -> httpx.Response:
    data = {"username": username, "display_name": username.title(), "password": PASSWORD, **extra}
    return await user.http_client.post("/auth/sign-up", data=data)


async def signed_up(new_user: Callable[[], User], username: str) -> User:
    user = new_user()
    response = await sign_up(user, username)
    assert response.status_code == 303, response.text
    assert token_of(user)
    return user


def row_counts(runtime: Runtime) -> dict[str, int]:
    with runtime.engine.connect() as conn:
        return {table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() for table in TABLES}


def location(response: httpx.Response) -> str:
    assert response.status_code == 303, (response.status_code, response.text)
    return response.headers["location"]


# --- sign-up -----------------------------------------------------------------------------------------


@SQLITE
async def test_sign_up_sets_a_strict_session_cookie_and_redirects_to_next(app) -> None:
    runtime, new_user = app
    user = new_user()
    response = await sign_up(user, "alice", next="/rooms/5")
    assert location(response) == "/rooms/5"
    attributes = cookie_attributes(response)
    assert "httponly" in attributes
    assert attributes.get("samesite", "").lower() == "lax"
    assert attributes.get("path") == "/"
    assert "secure" not in attributes, "no Secure flag over plain http (cookie_secure=auto)"
    assert int(attributes["max-age"]) == 30 * 86400
    actor = await runtime.services.accounts.authenticate(token_of(user))
    assert actor is not None and actor.username == "alice"


@SQLITE
@pytest.mark.parametrize(
    ("cookie_secure", "scheme", "secure"),
    [
        ("always", "http", True),
        ("auto", "https", True),
        ("never", "https", False),
    ],
)
async def test_secure_flag_follows_the_setting(
    tmp_path: Path, database_url: str, cookie_secure: str, scheme: str, secure: bool
) -> None:
    settings = make_settings(tmp_path, database_url, cookie_secure=cookie_secure)
    async with (
        simulated_app(settings),
        httpx.AsyncClient(transport=httpx.ASGITransport(core.app), base_url=f"{scheme}://test") as client,
    ):
        response = await client.post(
            "/auth/sign-up", data={"username": "alice", "display_name": "Alice", "password": PASSWORD}
        )
    assert response.status_code == 303
    assert ("secure" in cookie_attributes(response)) is secure


@SQLITE
async def test_invalid_sign_up_redirects_back_with_field_errors(app) -> None:
    runtime, new_user = app
    user = new_user()
    before = row_counts(runtime)
    secret_password = "tiny"
    response = await user.http_client.post(
        "/auth/sign-up", data={"username": "No Such Name!", "display_name": "", "password": secret_password}
    )
    target = urlsplit(location(response))
    assert target.path == "/sign-up"
    assert set(parse_qs(target.query)) == {"f"}
    assert session_cookie(response) is None
    assert row_counts(runtime) == before
    # The signed flash carries the field errors and form values, never the password.
    flash = Flash(runtime.settings.resolved_secret_key()).load(parse_qs(target.query)["f"][0])
    assert set(flash["errors"]) == {"username", "display_name", "password"}
    assert secret_password not in repr(flash)

    page = await user.http_client.get(location(response))
    assert page.status_code == 200
    assert "Please fix the fields marked below." in page.text
    assert "Password must be at least 10 characters." in page.text
    assert "Username: 3-32 characters" in page.text
    assert "Display name is required." in page.text
    assert "No Such Name!" in page.text, "the username typed is kept in the form"


@SQLITE
async def test_a_taken_username_is_reported_on_the_form(app) -> None:
    runtime, new_user = app
    await signed_up(new_user, "alice")
    user = new_user()
    response = await sign_up(user, "ALICE")
    assert urlsplit(location(response)).path == "/sign-up"
    assert session_cookie(response) is None
    page = await user.http_client.get(location(response))
    assert "That username is taken." in page.text
    assert row_counts(runtime)["users"] == 1


@SQLITE
@pytest.mark.parametrize("tamper", ["flip", "garbage", "foreign", "empty"])
async def test_a_tampered_flash_shows_no_error_and_no_traceback(
    app, tamper: str, caplog: pytest.LogCaptureFixture
) -> None:
    _runtime, new_user = app
    user = new_user()
    response = await user.http_client.post("/auth/sign-up", data={"username": "x", "display_name": "", "password": ""})
    flash = parse_qs(urlsplit(location(response)).query)["f"][0]
    flipped = flash[:10] + ("A" if flash[10] != "A" else "B") + flash[11:]  # inside the signed payload
    forged = {
        "flip": flipped,
        "garbage": "not-a-signed-value",
        "foreign": Flash("another-secret-of-someone-else-0123456789").dump(
            {"errors": {"password": "Password must be at least 10 characters."}}
        ),
        "empty": "",
    }[tamper]
    with caplog.at_level(logging.WARNING):
        page = await user.http_client.get("/sign-up", params={"f": forged})
    assert page.status_code == 200
    assert "Create your account" in page.text
    assert "Please fix the fields marked below." not in page.text
    assert "Password must be at least" not in page.text
    assert "Traceback (most recent call last)" not in page.text
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


# --- sign-in -----------------------------------------------------------------------------------------


@SQLITE
@pytest.mark.parametrize("username", ["alice", "nobody"])
async def test_wrong_credentials_redirect_back_with_one_message(app, username: str) -> None:
    _runtime, new_user = app
    await signed_up(new_user, "alice")
    user = new_user()
    response = await user.http_client.post(
        "/auth/sign-in", data={"username": username, "password": "wrong password!", "next": "/rooms/3"}
    )
    target = location(response)
    assert urlsplit(target).path == "/sign-in"
    assert session_cookie(response) is None
    page = await user.http_client.get(target)
    assert page.status_code == 200
    assert "Invalid username or password." in page.text
    assert "/rooms/3" in page.text, "the page remembers where to go after signing in"


@SQLITE
async def test_sixty_simultaneous_sign_ins_check_ten_passwords_and_the_right_one_is_refused(app) -> None:
    """The burst from the review: 60 POSTs at once, the right password at position 46."""
    _runtime, new_user = app
    await signed_up(new_user, "alice")
    browsers = [new_user() for _ in range(60)]
    attempts = [
        browser.http_client.post(
            "/auth/sign-in", data={"username": "alice", "password": PASSWORD if i == 45 else f"guess number {i}"}
        )
        for i, browser in enumerate(browsers)
    ]
    responses = await asyncio.gather(*attempts)
    assert all(session_cookie(r) is None for r in responses)
    flash = Flash(_runtime.settings.resolved_secret_key())
    messages = [flash.load(parse_qs(urlsplit(location(r)).query)["f"][0])["error"] for r in responses]
    assert messages.count("Invalid username or password.") == 10
    assert sum(m.startswith("Too many failed sign-in attempts.") for m in messages) == 50
    assert messages[45].startswith("Too many failed sign-in attempts.")


@SQLITE
@pytest.mark.settings(sign_up_limit=2)
async def test_sign_ups_from_one_address_are_limited_and_the_form_says_so(app) -> None:
    _runtime, new_user = app
    await signed_up(new_user, "alice")
    await signed_up(new_user, "bob")
    user = new_user()
    response = await sign_up(user, "carol")
    assert session_cookie(response) is None
    page = await user.http_client.get(location(response))
    assert "Too many sign-ups from your network. Try again in" in page.text
    assert "Carol" in page.text  # what was typed is kept


@SQLITE
async def test_sign_in_rotates_the_session_token(app) -> None:
    runtime, new_user = app
    accounts = runtime.services.accounts
    user = await signed_up(new_user, "alice")
    old_token = token_of(user)
    assert await accounts.authenticate(old_token) is not None

    response = await user.http_client.post("/auth/sign-in", data={"username": "alice", "password": PASSWORD})
    assert location(response) == "/"
    assert "httponly" in cookie_attributes(response)
    new_token = token_of(user)
    assert new_token and new_token != old_token
    assert await accounts.authenticate(old_token) is None, "the browser's previous session must be revoked"
    actor = await accounts.authenticate(new_token)
    assert actor is not None and actor.username == "alice"


@SQLITE
async def test_signing_up_while_signed_in_revokes_the_old_session(app) -> None:
    runtime, new_user = app
    user = await signed_up(new_user, "alice")
    old_token = token_of(user)
    response = await sign_up(user, "bob")
    assert response.status_code == 303
    assert await runtime.services.accounts.authenticate(old_token) is None
    actor = await runtime.services.accounts.authenticate(token_of(user))
    assert actor is not None and actor.username == "bob"


# --- redirect targets ----------------------------------------------------------------------------------


HOSTILE_TARGETS = [
    "https://evil.example",
    "//evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "javascript:alert(1)",
    "/\t/evil.example",
    "/\n/evil.example",
    "",
]


@SQLITE
@pytest.mark.parametrize("endpoint", ["/auth/sign-in", "/auth/sign-up"])
async def test_redirect_targets_stay_on_this_site(app, endpoint: str) -> None:
    runtime, new_user = app
    await runtime.services.accounts.create_user(SignUpForm(username="alice", display_name="Alice", password=PASSWORD))
    for number, target in enumerate([*HOSTILE_TARGETS, "/rooms/5"]):
        user = new_user()
        if endpoint == "/auth/sign-in":
            data = {"username": "alice", "password": PASSWORD, "next": target}
        else:
            data = {"username": f"user{number}", "display_name": "U", "password": PASSWORD, "next": target}
        response = await user.http_client.post(endpoint, data=data)
        expected = "/rooms/5" if target == "/rooms/5" else "/"
        assert location(response) == expected, f"next={target!r}"


@SQLITE
async def test_sign_in_page_sends_a_signed_in_browser_only_to_local_targets(app) -> None:
    _runtime, new_user = app
    user = await signed_up(new_user, "alice")
    for target in HOSTILE_TARGETS:
        response = await user.http_client.get("/sign-in", params={"next": target})
        assert location(response) == "/", f"next={target!r}"
    response = await user.http_client.get("/sign-up", params={"next": "/rooms/5"})
    assert location(response) == "/rooms/5"


# --- cross-site requests -----------------------------------------------------------------------------


CROSS_SITE = [
    {"origin": "https://evil.example"},
    {"origin": "null"},
    {"origin": "http://test.evil.example"},
    {"sec-fetch-site": "cross-site"},
    {"origin": "http://test", "sec-fetch-site": "cross-site"},
    {"origin": "https://sibling.test", "sec-fetch-site": "same-site"},
    {"origin": "https://evil.example", "x-forwarded-host": "chat.example.com"},
]


@SQLITE
@pytest.mark.parametrize("headers", CROSS_SITE, ids=lambda h: ",".join(f"{k}={v}" for k, v in h.items()))
async def test_cross_site_posts_are_refused(app, headers: dict[str, str]) -> None:
    runtime, new_user = app
    user = await signed_up(new_user, "alice")
    token = token_of(user)
    before = row_counts(runtime)
    client = user.http_client
    attempts = {
        "/auth/sign-up": {"username": "mallory", "display_name": "M", "password": PASSWORD},
        "/auth/sign-in": {"username": "alice", "password": PASSWORD},
        "/auth/password": {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        "/auth/sign-out": {},
    }
    for path, data in attempts.items():
        response = await client.post(path, data=data, headers=headers)
        assert response.status_code == 403, (path, response.status_code)
        assert session_cookie(response) is None
    assert row_counts(runtime) == before, "a refused request changes nothing"
    assert token_of(user) == token
    assert await runtime.services.accounts.authenticate(token) is not None


@SQLITE
@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "http://test"},
        {"sec-fetch-site": "same-origin"},
        {"origin": "http://test", "sec-fetch-site": "same-origin"},
        {"origin": "https://chat.example.com", "x-forwarded-host": "chat.example.com"},  # behind a reverse proxy
        {},  # not a browser: curl and friends send neither header
    ],
    ids=lambda h: ",".join(f"{k}={v}" for k, v in h.items()) or "no-headers",
)
async def test_same_origin_posts_are_accepted(app, headers: dict[str, str]) -> None:
    runtime, new_user = app
    user = new_user()
    response = await user.http_client.post(
        "/auth/sign-up", data={"username": "alice", "display_name": "Alice", "password": PASSWORD}, headers=headers
    )
    assert location(response) == "/"
    assert await runtime.services.accounts.authenticate(token_of(user)) is not None


# --- sign-out and password change --------------------------------------------------------------------


@SQLITE
async def test_sign_out_revokes_the_session_and_deletes_the_cookie(app) -> None:
    runtime, new_user = app
    user = await signed_up(new_user, "alice")
    token = token_of(user)
    sessions_before = row_counts(runtime)["sessions"]

    response = await user.http_client.post("/auth/sign-out")
    assert location(response) == "/sign-in"
    attributes = cookie_attributes(response)
    assert attributes.get("max-age") == "0" or "expires" in attributes
    assert attributes.get("path") == "/"
    assert token_of(user) is None, "the browser drops the cookie"
    assert await runtime.services.accounts.authenticate(token) is None
    assert row_counts(runtime)["sessions"] == sessions_before - 1

    # Replaying the old cookie gets nowhere.
    replay = new_user()
    replay.http_client.cookies.set(SESSION_COOKIE, token)
    assert urlsplit(location(await replay.http_client.get("/"))).path == "/sign-in"


@SQLITE
async def test_password_change_with_the_wrong_current_password_shows_the_error(app) -> None:
    runtime, new_user = app
    user = await signed_up(new_user, "alice")
    token = token_of(user)
    response = await user.http_client.post(
        "/auth/password", data={"current_password": "not my password", "new_password": NEW_PASSWORD}
    )
    assert urlsplit(location(response)).path == "/account"
    assert session_cookie(response) is None
    page = await user.http_client.get(location(response))
    assert page.status_code == 200
    assert "Current password is wrong." in page.text
    assert await runtime.services.accounts.authenticate(token) is not None, "a failed change signs nobody out"

    response = await user.http_client.post(
        "/auth/password", data={"current_password": PASSWORD, "new_password": "short"}
    )
    page = await user.http_client.get(location(response))
    assert "Password must be at least 10 characters." in page.text


@SQLITE
async def test_password_change_revokes_other_sessions_and_sets_a_new_cookie(app) -> None:
    runtime, new_user = app
    accounts = runtime.services.accounts
    laptop = await signed_up(new_user, "alice")
    phone = new_user()
    assert location(await phone.http_client.post("/auth/sign-in", data={"username": "alice", "password": PASSWORD}))
    laptop_token, phone_token = token_of(laptop), token_of(phone)
    assert await accounts.authenticate(phone_token) is not None

    response = await laptop.http_client.post(
        "/auth/password", data={"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert urlsplit(location(response)).path == "/account"
    assert "httponly" in cookie_attributes(response)
    new_token = token_of(laptop)
    assert new_token not in (None, laptop_token)
    assert await accounts.authenticate(laptop_token) is None
    assert await accounts.authenticate(phone_token) is None
    assert await accounts.authenticate(new_token) is not None
    page = await laptop.http_client.get(location(response))
    assert "Password changed." in page.text

    fresh = new_user()
    old = await fresh.http_client.post("/auth/sign-in", data={"username": "alice", "password": PASSWORD})
    assert urlsplit(location(old)).path == "/sign-in"
    new = await fresh.http_client.post("/auth/sign-in", data={"username": "alice", "password": NEW_PASSWORD})
    assert location(new) == "/"


@SQLITE
async def test_password_change_without_a_session_goes_to_sign_in(app) -> None:
    _runtime, new_user = app
    user = new_user()
    response = await user.http_client.post(
        "/auth/password", data={"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert location(response) == "/sign-in?next=/account"


# --- pages have no side effects ------------------------------------------------------------------------


@SQLITE
async def test_page_builders_do_not_write(app) -> None:
    runtime, new_user = app
    owner = await signed_up(new_user, "owner")
    owner_actor = await runtime.services.accounts.authenticate(token_of(owner))
    room = await runtime.services.rooms.create_room(owner_actor, name="General", topic="t")
    await runtime.services.chat.post_message(owner_actor, room.id, "hello")
    visitor = await signed_up(new_user, "visitor")  # not a member of the room
    anonymous = new_user()
    paths = ["/", "/sign-in", "/sign-up", "/account", f"/rooms/{room.id}", "/rooms/999", "/rooms/abc"]

    before = row_counts(runtime)
    assert before["rooms"] == 1 and before["messages"] == 1
    for who in (owner, visitor, anonymous):
        for path in paths:
            response = await who.http_client.get(path)
            assert response.status_code in (200, 303, 404), (path, response.status_code)
    assert row_counts(runtime) == before


# --- health ----------------------------------------------------------------------------------------


@SQLITE
async def test_healthz_reports_ok(app) -> None:
    _runtime, new_user = app
    response = await new_user().http_client.get("/healthz")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["status"] == "ok"


def _break_sqlite(runtime: Runtime) -> Callable[[], None]:
    """Move the database file aside and put a directory in its place (the engine's pool is emptied first)."""
    path = Path(runtime.engine.url.database)
    runtime.engine.dispose()
    moved = [(Path(f"{path}{suffix}"), Path(f"{path}{suffix}.aside")) for suffix in ("", "-wal", "-shm")]
    moved = [(src, dst) for src, dst in moved if src.exists()]
    for src, dst in moved:
        src.rename(dst)
    path.mkdir()

    def restore() -> None:
        path.rmdir()
        for src, dst in moved:
            dst.rename(src)

    return restore


def _break_postgres(runtime: Runtime, admin_url: str) -> Callable[[], None]:
    """Drop the app's database under it (its open connections are terminated)."""
    name = runtime.engine.url.database
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))

    def restore() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()

    return restore


async def test_healthz_is_503_when_the_database_is_gone(app, request: pytest.FixtureRequest) -> None:
    runtime, new_user = app
    client = (await signed_up(new_user, "alice")).http_client
    assert (await client.get("/healthz")).status_code == 200

    if runtime.engine.dialect.name == "sqlite":
        restore = _break_sqlite(runtime)
    else:
        admin_url = request.getfixturevalue("postgres_server")
        assert make_url(admin_url).database != runtime.engine.url.database
        restore = _break_postgres(runtime, admin_url)

    response = await client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] != "ok"
    assert response.json()["status"] == "unavailable" and response.json()["database"] == "unreachable"

    restore()
    if runtime.engine.dialect.name != "sqlite":
        # The database is back but empty: that is not chatapp's database yet.
        assert (await client.get("/healthz")).status_code == 503
        migrate_database(runtime)
    # The bus's listening connection comes back on its own within its 2 s backoff: health follows.
    deadline = asyncio.get_running_loop().time() + 5
    while (
        status := (await client.get("/healthz")).status_code
    ) != 200 and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)
    assert status == 200, "health recovers with the database"
    if runtime.engine.dialect.name == "sqlite":
        assert row_counts(runtime)["users"] == 1, "the very same database file is back"

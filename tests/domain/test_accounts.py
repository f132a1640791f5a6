"""Accounts: sign-up, sign-in, sessions and passwords, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from chatapp.domain.accounts import Accounts, SignUpForm, hash_token
from chatapp.domain.errors import Forbidden, InvalidCredentials, ValidationError
from chatapp.domain.events import SessionsRevoked, user_topic
from chatapp.domain.passwords import PasswordPolicy, Passwords
from chatapp.store.db import SqlTransactor
from chatapp.store.pubsub import InProcessPubSub
from tests.domain.helpers import PASSWORD, sign_up


async def test_sign_up_creates_account_and_session(runtime):
    actor, token = await sign_up(runtime, "alice", "Alice A.")
    assert actor.username == "alice"
    assert actor.display_name == "Alice A."
    assert len(token) >= 43  # 32 random bytes, base64


@pytest.mark.parametrize(
    ("form", "field", "fragment"),
    [
        (SignUpForm("ab", "A", PASSWORD), "username", "3-32 characters"),
        (SignUpForm("Bad Name!", "A", PASSWORD), "username", "3-32 characters of a-z"),
        (SignUpForm("x" * 33, "A", PASSWORD), "username", "3-32"),
        (SignUpForm("bob", "   ", PASSWORD), "display_name", "required"),
        (SignUpForm("bob", "B" * 65, PASSWORD), "display_name", "at most 64"),
        (SignUpForm("bob", "Bob", "short"), "password", "at least 10"),
        (SignUpForm("bob", "\u3164", PASSWORD), "display_name", "visible"),  # Hangul filler
        (SignUpForm("bob", "\u2800\u2800", PASSWORD), "display_name", "visible"),  # blank Braille
        (SignUpForm("bob", "\u200b\u0301 \u115f", PASSWORD), "display_name", "visible"),
        (SignUpForm("bob", "Assistant", PASSWORD), "display_name", "the AI's"),
        (SignUpForm("bob", "  ASSISTANT ", PASSWORD), "display_name", "the AI's"),
        (SignUpForm("bob", "A.I.", PASSWORD), "display_name", "the AI's"),
        (SignUpForm("bob", "\uff21\uff29", PASSWORD), "display_name", "the AI's"),
        (SignUpForm("bob", "Assistant\u3164", PASSWORD), "display_name", "the AI's"),  # an invisible tail
        (SignUpForm("bob", "\u0410ssistant", PASSWORD), "display_name", "the AI's"),  # a Cyrillic A
        (SignUpForm("bob", "Assist\u00e1nt", PASSWORD), "display_name", "the AI's"),
    ],
)
async def test_sign_up_rejects_each_invalid_field_clearly(runtime, form, field, fragment):
    with pytest.raises(ValidationError) as caught:
        await runtime.services.accounts.sign_up(form)
    assert fragment in caught.value.fields[field]


async def test_username_is_normalised_and_unique(runtime):
    await sign_up(runtime, "Carol")
    with pytest.raises(ValidationError) as caught:
        await runtime.services.accounts.sign_up(SignUpForm("carol", "Other", PASSWORD))
    assert caught.value.fields == {"username": "That username is taken."}


async def test_password_hash_is_argon2id_at_owasp_minimum_or_above(runtime):
    await sign_up(runtime, "dave")
    with runtime.engine.connect() as conn:
        stored = conn.execute(text("SELECT password_hash FROM users WHERE username='dave'")).scalar_one()
    assert stored.startswith("$argon2id$v=19$")
    params = dict(part.split("=") for part in stored.split("$")[3].split(","))
    assert int(params["m"]) >= 19_456 and int(params["t"]) >= 2 and int(params["p"]) == 1


async def test_wrong_password_and_unknown_user_get_one_generic_error(runtime):
    await sign_up(runtime, "erin")
    accounts = runtime.services.accounts
    with pytest.raises(InvalidCredentials) as wrong:
        await accounts.sign_in(username="erin", password="not the password")
    with pytest.raises(InvalidCredentials) as unknown:
        await accounts.sign_in(username="nobody", password="not the password")
    assert wrong.value.message == unknown.value.message == "Invalid username or password."


async def test_unknown_username_takes_as_long_as_wrong_password(runtime):
    await sign_up(runtime, "frank")
    accounts = runtime.services.accounts

    async def seconds(username: str) -> float:
        start = time.perf_counter()
        with pytest.raises(InvalidCredentials):
            await accounts.sign_in(username=username, password="wrong password!")
        return time.perf_counter() - start

    # Interleaved, and the fastest of each: other load on the machine only ever adds time.
    samples: dict[str, list[float]] = {"frank": [], "nobody-here": []}
    for _ in range(7):
        for username, times in samples.items():
            times.append(await seconds(username))
    known, unknown = min(samples["frank"]), min(samples["nobody-here"])
    assert 0.5 < unknown / known < 2.0, (known, unknown)


async def test_sign_in_issues_fresh_token_and_revokes_previous(runtime):
    _, first = await sign_up(runtime, "gina")
    accounts = runtime.services.accounts
    second = await accounts.sign_in(username="GINA ", password=PASSWORD, previous_token=first)
    assert second.token != first
    assert await accounts.authenticate(first) is None
    assert (await accounts.authenticate(second.token)).username == "gina"


async def test_tokens_are_stored_hashed(runtime):
    _, token = await sign_up(runtime, "hank")
    with runtime.engine.connect() as conn:
        stored = conn.execute(text("SELECT token_hash FROM sessions")).scalars().all()
    assert token not in stored
    assert hash_token(token) in stored


async def test_sign_out_revokes_and_tells_open_tabs(runtime):
    actor, token = await sign_up(runtime, "ivan")
    accounts = runtime.services.accounts
    events = []
    runtime.services.session_watch.watch(actor, lambda: _record(events))
    await accounts.sign_out(token)
    assert await accounts.authenticate(token) is None
    assert events == ["revoked"]


async def _record(events: list) -> None:
    events.append("revoked")


async def test_change_password_revokes_every_session(runtime):
    actor, first = await sign_up(runtime, "judy")
    accounts = runtime.services.accounts
    other = await accounts.sign_in(username="judy", password=PASSWORD)
    new = await accounts.update_password(actor, current=PASSWORD, new="a brand new password")
    assert await accounts.authenticate(first) is None
    assert await accounts.authenticate(other.token) is None
    assert await accounts.authenticate(new.token) is not None
    with pytest.raises(InvalidCredentials):
        await accounts.sign_in(username="judy", password=PASSWORD)
    await accounts.sign_in(username="judy", password="a brand new password")


async def test_change_password_checks_current_and_new(runtime):
    actor, _ = await sign_up(runtime, "kate")
    accounts = runtime.services.accounts
    with pytest.raises(ValidationError) as wrong:
        await accounts.update_password(actor, current="wrong wrong", new="a brand new password")
    assert "current_password" in wrong.value.fields
    with pytest.raises(ValidationError) as short:
        await accounts.update_password(actor, current=PASSWORD, new="short")
    assert "new_password" in short.value.fields
    with pytest.raises(ValidationError) as both:
        await accounts.update_password(actor, current="wrong wrong", new="short")
    assert set(both.value.fields) == {"current_password", "new_password"}  # every field's error at once


async def test_sign_in_rehashes_when_parameters_change(runtime):
    tx = SqlTransactor(runtime.engine)
    stronger = Accounts(
        tx=tx,
        pubsub=InProcessPubSub(),
        passwords=Passwords(PasswordPolicy(memory_kib=24_576, time_cost=3)),
        session_lifetime=timedelta(days=1),
    )
    await stronger.create_user(SignUpForm("liam", "Liam", PASSWORD))
    await runtime.services.accounts.sign_in(username="liam", password=PASSWORD)
    with runtime.engine.connect() as conn:
        stored = conn.execute(text("SELECT password_hash FROM users WHERE username='liam'")).scalar_one()
    assert "m=19456,t=2,p=1" in stored


async def test_expired_session_is_rejected(runtime):
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    accounts = Accounts(
        tx=SqlTransactor(runtime.engine),
        pubsub=InProcessPubSub(),
        passwords=Passwords(PasswordPolicy()),
        session_lifetime=timedelta(hours=1),
        clock=lambda: now[0],
    )
    session = await accounts.sign_up(SignUpForm("mia", "Mia", PASSWORD))
    assert await accounts.authenticate(session.token) is not None
    now[0] += timedelta(hours=1, seconds=1)
    assert await accounts.authenticate(session.token) is None
    fresh = await accounts.sign_in(username="mia", password=PASSWORD)  # expired rows are tidied at sign-in
    with runtime.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM sessions")).scalar() == 1
    assert await accounts.authenticate(fresh.token) is not None


def test_revocation_event_round_trips():
    from chatapp.domain.events import event_from_dict

    event = SessionsRevoked(user_id=7)
    assert event_from_dict(event.to_dict()) == event
    assert user_topic(7) == "user:7"


async def test_password_changed_during_sign_in_wins(runtime):
    """The old password is checked (slowly); if the password changes meanwhile, no session is issued."""
    slow = Passwords(PasswordPolicy(memory_kib=262_144, time_cost=3))  # verifying its hashes takes a while
    tx = SqlTransactor(runtime.engine)
    slow_accounts = Accounts(tx=tx, pubsub=InProcessPubSub(), passwords=slow, session_lifetime=timedelta(days=1))
    user = await slow_accounts.create_user(SignUpForm("nora", "Nora", PASSWORD))
    signing_in = asyncio.create_task(runtime.services.accounts.sign_in(username="nora", password=PASSWORD))
    await asyncio.sleep(0.05)  # sign-in is now inside argon2
    new_hash = await Passwords(PasswordPolicy()).hash("the new password!")
    await tx.run(lambda uow: uow.users.set_password_hash(user.id, new_hash, datetime.now(UTC)), write=True)
    assert not signing_in.done()
    with pytest.raises(InvalidCredentials):
        await signing_in
    with runtime.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM sessions")).scalar_one() == 0
        assert conn.execute(text("SELECT password_hash FROM users")).scalar_one() == new_hash


async def test_signing_in_over_another_users_cookie_tells_their_tabs(runtime):
    alice, alice_token = await sign_up(runtime, "olive", "Olive")
    await sign_up(runtime, "pete", "Pete")
    told = []
    runtime.services.session_watch.watch(alice, lambda: _record(told))
    await runtime.services.accounts.sign_in(username="pete", password=PASSWORD, previous_token=alice_token)
    assert await runtime.services.accounts.authenticate(alice_token) is None
    assert told == ["revoked"]


async def test_a_new_display_name_shows_in_every_room_and_on_old_messages(runtime):
    services = runtime.services
    alice, _ = await sign_up(runtime, "alice", "Alice")
    bob, _ = await sign_up(runtime, "bob", "Bob")
    rooms = [await services.rooms.create_room(alice, name=name) for name in ("One", "Two")]
    await services.membership.join(bob, rooms[0].id)
    await services.chat.post_message(alice, rooms[0].id, "hello")
    heard = []
    for room in rooms:
        await services.live.watch(alice, room.id, PeopleWatcher(heard, room.id))

    assert await services.accounts.update_display_name(alice, "  Alice   Liddell ") == "Alice Liddell"
    for room in rooms:
        names = [
            p.display_name
            for p in await services.membership.list_participants(bob if room is rooms[0] else alice, room.id)
        ]
        assert "Alice Liddell" in names and "Alice" not in names
    (message,) = (await services.chat.list_messages(bob, rooms[0].id)).messages
    assert message.author_name == "Alice Liddell"
    assert sorted(heard) == sorted(room.id for room in rooms)  # open tabs of both rooms re-read their people
    session = await services.accounts.sign_in(username="alice", password=PASSWORD)
    assert (await services.accounts.authenticate(session.token)).display_name == "Alice Liddell"
    assert [
        p.display_name
        for p in await services.membership.list_participants(bob, rooms[0].id)
        if p.user_id == bob.user_id
    ] == ["Bob"]

    for bad in ("", "   ", "x" * 65):
        with pytest.raises(ValidationError):
            await services.accounts.update_display_name(alice, bad)
    link = await services.invites.create_invite(alice, rooms[1].id)
    guest = (await services.invites.accept_as_guest(link.token, "Gwen")).actor
    with pytest.raises(Forbidden):
        await services.accounts.update_display_name(guest, "Not Gwen")


class PeopleWatcher:
    """A room's open tab, as far as people changes go."""

    def __init__(self, heard: list[int], room_id: int) -> None:
        self.heard, self.room_id = heard, room_id

    async def on_participants_changed(self) -> None:
        self.heard.append(self.room_id)

    async def on_message(self, message) -> None:
        pass


async def test_names_that_look_empty_or_like_the_ai_are_refused_everywhere(runtime):
    """Renaming, and a guest's name at an invite link, follow the same rules as sign-up."""
    accounts, services = runtime.services.accounts, runtime.services
    alice = (await sign_up(runtime, "alice"))[0]
    for name in ("\u3164", "assistant", "Ai"):
        with pytest.raises(ValidationError):
            await accounts.update_display_name(alice, name)
    room = await services.rooms.create_room(alice, name="R", private=True)
    link = await services.invites.create_invite(alice, room.id)
    for name in ("\u2800", "Assistant"):
        with pytest.raises(ValidationError) as refused:
            await services.invites.accept_as_guest(link.token, name)
        assert "display_name" in refused.value.fields
    with pytest.raises(ValidationError) as refused:
        await services.rooms.create_room(alice, name="\u3164\u3164")
    assert "visible" in refused.value.fields["name"]
    # Names with visible letters around such characters, or that merely contain the word, are fine.
    assert await accounts.update_display_name(alice, "Ann \u3164 Lee") == "Ann \u3164 Lee"
    assert await accounts.update_display_name(alice, "Assistant Manager") == "Assistant Manager"
    assert await accounts.update_display_name(alice, "Zoë 🙂") == "Zoë 🙂"

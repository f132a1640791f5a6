"""Personal access tokens and bot accounts, through the real services on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from chatapp.app import Runtime
from chatapp.domain.errors import Forbidden, InvalidCredentials, MissingScope, NotFound, ValidationError
from chatapp.domain.events import SessionsRevoked, user_topic
from chatapp.domain.models import Actor, ParticipantKind, Scope
from chatapp.domain.tokens import TOKEN_PREFIX
from tests.domain.helpers import PASSWORD, sign_up


async def token_actor(runtime: Runtime, owner: Actor, *scopes: str, bot_id: int | None = None) -> tuple[Actor, str]:
    new = await runtime.services.tokens.create_token(owner, name="script", scopes=list(scopes), bot_id=bot_id)
    actor = await runtime.services.tokens.authenticate_token(new.value)
    assert actor is not None
    return actor, new.value


async def test_a_token_is_shown_once_stored_hashed_and_acts_with_its_scopes(runtime: Runtime) -> None:
    alice, _ = await sign_up(runtime, "alice")
    new = await runtime.services.tokens.create_token(alice, name="my script", scopes=["read", "write"])
    assert new.value.startswith(TOKEN_PREFIX) and len(new.value) >= len(TOKEN_PREFIX) + 43  # 32 bytes, base64
    assert new.token.prefix == new.value[: len(new.token.prefix)] and new.token.prefix != new.value
    with runtime.engine.connect() as conn:
        stored = conn.execute(text("SELECT token_hash, scopes FROM api_tokens")).one()
    assert new.value not in stored.token_hash and len(stored.token_hash) == 64
    actor = await runtime.services.tokens.authenticate_token(new.value)
    assert actor is not None and actor.user_id == alice.user_id and actor.token_id == new.token.id
    assert actor.scopes == frozenset({Scope.READ, Scope.WRITE})
    listed = await runtime.services.tokens.list_tokens(alice)
    assert [t.name for t in listed] == ["my script"] and listed[0].last_used_at is not None


@pytest.mark.parametrize(
    ("scopes", "field"),
    [([], "scopes"), (["read", "root"], "scopes"), ("read", "scopes")],
)
async def test_bad_scopes_are_refused_and_nothing_is_saved(runtime: Runtime, scopes: object, field: str) -> None:
    alice, _ = await sign_up(runtime, "alice")
    with pytest.raises(ValidationError) as refused:
        await runtime.services.tokens.create_token(alice, name="x", scopes=scopes)
    assert field in refused.value.fields
    assert await runtime.services.tokens.list_tokens(alice) == []


async def test_names_and_expiry_are_checked(runtime: Runtime) -> None:
    alice, _ = await sign_up(runtime, "alice")
    tokens = runtime.services.tokens
    for name in ("", "   ", "x" * 65, "evil\u202ename"):
        with pytest.raises(ValidationError):
            await tokens.create_token(alice, name=name, scopes=["read"])
    with pytest.raises(ValidationError):
        await tokens.create_token(alice, name="old", scopes=["read"], expires_at=datetime.now(UTC) - timedelta(1))


async def test_an_expired_or_revoked_token_is_refused(runtime: Runtime) -> None:
    alice, _ = await sign_up(runtime, "alice")
    tokens = runtime.services.tokens
    soon = datetime.now(UTC) + timedelta(seconds=1)
    short = await tokens.create_token(alice, name="short", scopes=["read"], expires_at=soon)
    with runtime.engine.begin() as conn:  # its expiry passes
        conn.execute(text("UPDATE api_tokens SET expires_at = :past"), {"past": datetime.now(UTC) - timedelta(1)})
    assert await tokens.authenticate_token(short.value) is None
    kept = await tokens.create_token(alice, name="kept", scopes=["read"])
    heard: list[object] = []
    runtime.pubsub.subscribe(user_topic(alice.user_id or 0), heard.append)
    await tokens.revoke_token(alice, kept.token.id)
    await runtime.pubsub.settled()
    assert await tokens.authenticate_token(kept.value) is None
    assert any(isinstance(event, SessionsRevoked) for event in heard)  # its sockets check their token again
    assert await tokens.authenticate_token("chat_" + "A" * 43) is None
    assert await tokens.authenticate_token("not a token") is None


async def test_nobody_revokes_or_sees_anothers_token(runtime: Runtime) -> None:
    alice, _ = await sign_up(runtime, "alice")
    bob, _ = await sign_up(runtime, "bob")
    new = await runtime.services.tokens.create_token(alice, name="a", scopes=["read"])
    with pytest.raises(NotFound):
        await runtime.services.tokens.revoke_token(bob, new.token.id)
    assert await runtime.services.tokens.list_tokens(bob) == []
    assert await runtime.services.tokens.authenticate_token(new.value) is not None


async def test_changing_the_password_revokes_the_persons_tokens_but_not_their_bots(runtime: Runtime) -> None:
    alice, _ = await sign_up(runtime, "alice")
    tokens = runtime.services.tokens
    bot = await tokens.create_bot(alice, username="helper", display_name="Helper")
    own = await tokens.create_token(alice, name="own", scopes=["read"])
    bots = await tokens.create_token(alice, name="bot's", scopes=["read"], bot_id=bot.id)
    await runtime.services.accounts.update_password(alice, current=PASSWORD, new="a new long passphrase")
    assert await tokens.authenticate_token(own.value) is None
    assert await tokens.authenticate_token(bots.value) is not None


async def test_a_token_cannot_change_the_password_or_make_tokens_without_admin(runtime: Runtime) -> None:
    alice, _ = await sign_up(runtime, "alice")
    writer, _ = await token_actor(runtime, alice, "read", "write")
    with pytest.raises(Forbidden):
        await runtime.services.accounts.update_password(writer, current=PASSWORD, new="a new long passphrase")
    with pytest.raises(MissingScope):
        await runtime.services.tokens.create_token(writer, name="more", scopes=["admin"])
    admin, _ = await token_actor(runtime, alice, "admin")
    assert (await runtime.services.tokens.create_token(admin, name="more", scopes=["read"])).value


async def test_a_bot_has_no_password_and_sees_only_the_rooms_it_was_added_to(runtime: Runtime) -> None:
    alice, _ = await sign_up(runtime, "alice")
    tokens = runtime.services.tokens
    bot = await tokens.create_bot(alice, username="helper", display_name="Helper")
    assert bot.is_bot and bot.bot_owner_id == alice.user_id
    assert [b.username for b in await tokens.list_bots(alice)] == ["helper"]
    with pytest.raises(InvalidCredentials):
        await runtime.services.accounts.sign_in(username="helper", password="!")
    bot_actor, _ = await token_actor(runtime, alice, "read", "write", bot_id=bot.id)
    assert bot_actor.is_bot
    rooms = runtime.services.rooms
    public = await rooms.create_room(alice, name="Public")
    other = await rooms.create_room(alice, name="Other")
    lobby = await rooms.list_rooms(bot_actor)
    assert lobby.my_rooms == [] and lobby.public_rooms == []
    with pytest.raises(NotFound):
        await rooms.get_room_access(bot_actor, public.id)
    with pytest.raises(NotFound):
        await runtime.services.membership.join(bot_actor, public.id)
    added = await runtime.services.membership.add_bot(alice, public.id, "helper")
    assert added.kind is ParticipantKind.BOT
    message = await runtime.services.chat.post_message(bot_actor, public.id, "beep")
    assert message.author_kind is ParticipantKind.BOT
    assert [s.room.id for s in (await rooms.list_rooms(bot_actor)).my_rooms] == [public.id]
    with pytest.raises(NotFound):
        await runtime.services.chat.list_messages(bot_actor, other.id)
    with pytest.raises(Forbidden):
        await rooms.create_room(bot_actor, name="Mine")
    with pytest.raises(Forbidden):
        await tokens.create_bot(bot_actor, username="child", display_name="Child")


async def test_only_moderators_add_bots_and_only_real_bots(runtime: Runtime) -> None:
    alice, _ = await sign_up(runtime, "alice")
    bob, _ = await sign_up(runtime, "bob")
    await runtime.services.tokens.create_bot(alice, username="helper", display_name="Helper")
    room = await runtime.services.rooms.create_room(alice, name="Team")
    await runtime.services.membership.join(bob, room.id)
    with pytest.raises(Forbidden):
        await runtime.services.membership.add_bot(bob, room.id, "helper")
    with pytest.raises(NotFound):
        await runtime.services.membership.add_bot(alice, room.id, "bob")  # a person, not a bot
    first = await runtime.services.membership.add_bot(alice, room.id, "helper")
    again = await runtime.services.membership.add_bot(alice, room.id, " Helper ")
    assert first.id == again.id
    await runtime.services.membership.remove_participant(alice, room.id, first.id)
    back = await runtime.services.membership.add_bot(alice, room.id, "helper")
    assert back.id == first.id


async def test_bot_names_are_checked_like_peoples(runtime: Runtime) -> None:
    alice, _ = await sign_up(runtime, "alice")
    tokens = runtime.services.tokens
    with pytest.raises(ValidationError) as taken:
        await tokens.create_bot(alice, username="alice", display_name="Alice bot")
    assert "username" in taken.value.fields
    with pytest.raises(ValidationError) as ai_name:
        await tokens.create_bot(alice, username="fake-ai", display_name=runtime.settings.ai_name)
    assert "display_name" in ai_name.value.fields

"""Account settings' tokens and bots through simulated users: make a token, see it once, use it, revoke it."""

from __future__ import annotations

import pytest

from chatapp.domain.models import Scope
from tests.domain.helpers import PASSWORD
from tests.pages.conftest import signed_up

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def alice_actor(runtime):
    session = await runtime.services.accounts.sign_in(username="alice", password=PASSWORD)
    return await runtime.services.accounts.authenticate(session.token)


def shown_token(user) -> str:
    with user:
        (field,) = user.find("New token").elements
        return field.value


async def test_a_token_is_made_shown_once_works_and_is_revoked(app) -> None:
    runtime, new_user = app
    alice = await signed_up(new_user, "alice", "Alice")
    await alice.open("/account")
    await alice.should_see("Personal access tokens")
    await alice.should_see("No tokens yet.")
    alice.find("Token name").type("deploy script")
    alice.find("Ask the AI").click()
    alice.find("Create token").click()
    await alice.should_see("Copy the token now: it is shown only once.")
    value = shown_token(alice)
    actor = await runtime.services.tokens.authenticate_token(value)
    assert actor is not None and actor.username == "alice"
    assert actor.scopes == frozenset({Scope.READ, Scope.WRITE, Scope.AI})
    await alice.should_see("deploy script · mine")

    await alice.open("/account")  # shown once: a new visit lists it without its value
    await alice.should_see("deploy script · mine")
    await alice.should_not_see("Copy the token now")
    alice.find("Revoke").click()
    await alice.should_see("Token 'deploy script' revoked.")
    assert await runtime.services.tokens.authenticate_token(value) is None


async def test_a_nameless_token_is_refused_clearly(app) -> None:
    runtime, new_user = app
    alice = await signed_up(new_user, "alice", "Alice")
    await alice.open("/account")
    alice.find("Create token").click()
    await alice.should_see("Give the token a name (what it is for).")
    assert await runtime.services.tokens.list_tokens(await alice_actor(runtime)) == []


async def test_a_bot_is_made_and_given_a_token(app) -> None:
    runtime, new_user = app
    alice = await signed_up(new_user, "alice", "Alice")
    await alice.open("/account")
    alice.find("Bot username").type("deploybot")
    alice.find("Bot display name").type("Deploy Bot")
    alice.find("Create bot").click()
    await alice.should_see("Deploy Bot (@deploybot) · bot")
    alice.find("Token for").click()
    alice.find("Bot @deploybot").click()
    alice.find("Token name").type("bot token")
    alice.find("Create token").click()
    await alice.should_see("Copy the token now: it is shown only once.")
    actor = await runtime.services.tokens.authenticate_token(shown_token(alice))
    assert actor is not None and actor.is_bot and actor.username == "deploybot"
    await alice.should_see("bot token · bot @deploybot")


async def test_a_bots_outgoing_webhook_is_set_its_secret_shown_once_and_removed(app) -> None:
    runtime, new_user = app
    alice = await signed_up(new_user, "alice", "Alice")
    owner = await alice_actor(runtime)
    bot = await runtime.services.tokens.create_bot(owner, username="echo", display_name="Echo")
    await alice.open("/account")
    alice.find("Echo (@echo) · bot").click()
    await alice.should_see("No outgoing webhook.")
    alice.find("Outgoing webhook URL").type("not a url")
    alice.find("Save URL").click()
    await alice.should_see("The URL must start with http:// or https://")
    assert await runtime.services.bot_hooks.get_hook(owner, bot.id) is None
    alice.find("Outgoing webhook URL").clear().type("https://bot.example.com/hook")
    alice.find("Save URL").click()
    await alice.should_see("Copy the signing secret now: it is shown only once.")
    with alice:
        (field,) = alice.find("Signing secret").elements
    hook = await runtime.services.bot_hooks.get_hook(owner, bot.id)
    assert hook is not None and hook.url == "https://bot.example.com/hook" and hook.secret == field.value
    await alice.should_see("Calls https://bot.example.com/hook")
    alice.find("Remove webhook").click()
    await alice.should_see("@echo is called no more.")
    assert await runtime.services.bot_hooks.get_hook(owner, bot.id) is None

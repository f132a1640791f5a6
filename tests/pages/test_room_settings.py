"""The room settings dialog through simulated users: owners change how the AI answers and see its usage."""

from __future__ import annotations

import pytest

from chatapp.domain.models import AiMode
from tests.conftest import make_settings
from tests.domain.helpers import PASSWORD
from tests.fake_llm import FakeLLM, Script, fake_llm_fixture  # noqa: F401 - the fake_llm fixture
from tests.pages.conftest import signed_up, simulated_app
from tests.pages.test_live_room import open_new_room, send
from tests.pages.test_moderation import owner_and_member
from tests.timing import eventually

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
async def ai_app(tmp_path, database_url, fake_llm: FakeLLM):
    settings = make_settings(
        tmp_path,
        database_url,
        ai_model="openai/fake-model",
        ai_models="openai/fake-model,openai/fake-large",
        ai_api_base=fake_llm.base_url,
        ai_api_key="test-key",
        ai_retries=0,
    )
    async with simulated_app(settings) as built:
        yield built


async def owners_view(runtime, username: str):
    """The AI settings of the user's (only) room, read through the domain as that user."""
    session = await runtime.services.accounts.sign_in(username=username, password=PASSWORD)
    actor = await runtime.services.accounts.authenticate(session.token)
    (summary,) = (await runtime.services.rooms.list_rooms(actor)).my_rooms
    return await runtime.services.ai_settings.get_ai_settings(actor, summary.room.id)


async def test_the_owner_changes_the_ai_settings_and_a_member_cannot(ai_app, fake_llm):
    runtime, new_user = ai_app
    alice, bob = await owner_and_member(new_user)
    await bob.should_not_see("Settings")

    alice.find("Settings").click()
    await alice.should_see("When the AI answers")
    await alice.should_see("The AI has not answered here yet.")
    alice.find("When the AI answers").click()
    alice.find("After every message").click()
    alice.find("Instructions for the AI (persona, tone, what to focus on)").type("Answer like a ship's captain.")
    alice.find("Model").click()
    alice.find("openai/fake-large").click()
    alice.find("Save settings").click()
    await alice.should_see("Settings saved.")

    saved = (await owners_view(runtime, "alice")).settings
    assert (saved.mode, saved.model) == (AiMode.EVERY, "openai/fake-large")
    fake_llm.set_default(Script(reply="Aye, all hands ready."))
    await send(bob, "Are we ready?")  # mode "every": no @ai needed
    await alice.should_see("Aye, all hands ready.")
    request = fake_llm.last_request
    assert request.model == "fake-large" and "ship's captain" in request.messages[0]["content"]

    alice.find("Settings").click()
    await alice.should_see("AI usage in this room")
    await alice.should_see("openai/fake-large")


async def test_a_too_long_instruction_is_refused_on_its_field_and_nothing_is_saved(ai_app):
    runtime, new_user = ai_app
    alice = await signed_up(new_user, "alice", "Alice")
    await open_new_room(alice, "Launch")
    alice.find("Settings").click()
    await alice.should_see("When the AI answers")
    alice.find("Room name").clear().type("Launch day")  # good changes saved with the bad one...
    alice.find("Members may create invite links").click()
    with alice:
        (field,) = alice.find("Instructions for the AI (persona, tone, what to focus on)").elements
    field.value = "x" * 2001  # what a browser ignoring maxlength could send
    alice.find("Save settings").click()
    await alice.should_see("the limit is 2000")
    await eventually(lambda: field.props.get("error") is True)
    saved = (await owners_view(runtime, "alice")).settings
    assert saved.instruction == "" and saved.mode is AiMode.MENTION
    owner = await runtime.services.accounts.authenticate(alice.http_client.cookies["chatapp_session"])
    (summary,) = (await runtime.services.rooms.list_rooms(owner)).my_rooms
    assert (summary.room.name, summary.room.members_can_invite) == ("Launch", False)  # ...are not saved either


async def test_the_owner_renames_the_room_and_every_open_tab_shows_it(ai_app):
    runtime, new_user = ai_app
    alice, bob = await owner_and_member(new_user)
    alice.find("Settings").click()
    await alice.should_see("When the AI answers")
    alice.find("Room name").clear().type("Launch day")
    alice.find("Topic").type("Everything for Friday")
    alice.find("Save settings").click()
    await alice.should_see("Settings saved.")
    for user in (alice, bob):
        await user.should_see("Launch day")
        await user.should_see("Everything for Friday")
    await bob.open("/")
    await bob.should_see("Launch day")

    alice.find("Settings").click()
    await alice.should_see("When the AI answers")
    alice.find("Room name").clear()
    alice.find("Save settings").click()
    await alice.should_see("Room name is required.")
    owner = await runtime.services.accounts.authenticate(alice.http_client.cookies["chatapp_session"])
    (summary,) = (await runtime.services.rooms.list_rooms(owner)).my_rooms
    assert (summary.room.name, summary.room.topic) == ("Launch day", "Everything for Friday")  # nothing lost


async def test_the_owner_deletes_the_room_and_everyone_in_it_is_sent_to_the_lobby(ai_app):
    runtime, new_user = ai_app
    alice, bob = await owner_and_member(new_user)
    alice.find("Settings").click()
    await alice.should_see("Delete this room")
    alice.find("Type the room's name to delete it").type("Lunch")
    alice.find("Delete room forever").click()
    await alice.should_see("Type the room's name exactly to delete it.")
    alice.find("Type the room's name to delete it").clear().type("Launch")
    alice.find("Delete room forever").click()
    await bob.should_see("That room was deleted by its owner.")
    await alice.should_see("That room was deleted by its owner.")
    owner = await runtime.services.accounts.authenticate(alice.http_client.cookies["chatapp_session"])
    assert (await runtime.services.rooms.list_rooms(owner)).my_rooms == []


async def test_the_only_owner_alone_in_a_room_is_told_how_to_be_rid_of_it(ai_app):
    _, new_user = ai_app
    alice = await signed_up(new_user, "alice", "Alice")
    await open_new_room(alice, "Lonely")
    alice.find("Leave room").click()
    await alice.should_see("Leave? Click again")
    alice.find("Leave? Click again").click()
    await alice.should_see("or delete the room in its Settings")


async def test_the_owner_makes_an_incoming_webhook_whose_url_posts_into_the_room(app):
    runtime, new_user = app
    alice = await signed_up(new_user, "alice", "Alice")
    await open_new_room(alice, "Deploys")
    alice.find("Settings").click()
    await alice.should_see("Incoming webhooks")
    await alice.should_see("No webhooks yet.")
    alice.find("Webhook name").type("CI")
    alice.find("Create webhook").click()
    await alice.should_see("Copy the URL now: it is shown only once.")
    with alice:
        (field,) = alice.find("Webhook URL").elements
    url = field.value
    assert "/api/v1/hooks/whk_" in url
    token = url.rsplit("/", 1)[1]
    await runtime.services.webhooks.post_via_webhook(token, "build 42 passed", "Jenkins")
    await alice.should_see("build 42 passed")  # live, in the room behind the dialog
    await alice.should_see("Jenkins")
    alice.find("Revoke").click()
    await alice.should_see("Webhook 'CI' revoked.")
    with pytest.raises(Exception, match="No such webhook"):
        await runtime.services.webhooks.post_via_webhook(token, "after revoking")

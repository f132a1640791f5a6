"""Rooms, participants, messages and authorization, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import replace

import pytest
from sqlalchemy import text

from chatapp.domain.errors import Forbidden, NotFound, ValidationError
from chatapp.domain.events import MessagePosted, room_topic
from chatapp.domain.models import ParticipantKind, Role
from chatapp.domain.room_settings import RoomSettingsChanges
from tests.domain.helpers import sign_up


async def test_creator_owns_the_room_and_sees_it_in_the_lobby(runtime):
    alice, _ = await sign_up(runtime, "alice", "Alice")
    room = await runtime.services.rooms.create_room(alice, name="  General  ", topic="Anything goes")
    assert room.name == "General" and room.topic == "Anything goes" and not room.is_private
    people = await runtime.services.membership.list_participants(alice, room.id)
    assert [(p.display_name, p.kind, p.role, p.user_id) for p in people] == [
        ("Alice", ParticipantKind.USER, Role.OWNER, alice.user_id),
        ("Assistant", ParticipantKind.AI, Role.MEMBER, None),  # every room has the AI participant
    ]
    lobby = await runtime.services.rooms.list_rooms(alice)
    assert [s.room.id for s in lobby.my_rooms] == [room.id]
    assert lobby.my_rooms[0].role is Role.OWNER and lobby.my_rooms[0].last_message is None


@pytest.mark.parametrize(
    ("name", "topic", "field"),
    [("", "", "name"), ("   ", "", "name"), ("x" * 81, "", "name"), ("ok", "t" * 301, "topic")],
)
async def test_room_input_is_validated(runtime, name, topic, field):
    alice, _ = await sign_up(runtime, "alice")
    with pytest.raises(ValidationError) as caught:
        await runtime.services.rooms.create_room(alice, name=name, topic=topic)
    assert field in caught.value.fields


async def test_public_room_can_be_found_and_joined(runtime):
    rooms = runtime.services.rooms
    membership = runtime.services.membership
    alice, _ = await sign_up(runtime, "alice")
    bob, _ = await sign_up(runtime, "bob", "Bob")
    room = await rooms.create_room(alice, name="Open")
    lobby = await rooms.list_rooms(bob)
    assert [r.id for r in lobby.public_rooms] == [room.id] and lobby.my_rooms == []
    access = await rooms.get_room_access(bob, room.id)
    assert access.me is None and access.can_join and not access.can_post
    member = await membership.join(bob, room.id)
    assert member.role is Role.MEMBER and member.display_name == "Bob"
    assert (await membership.join(bob, room.id)).id == member.id  # idempotent
    lobby = await rooms.list_rooms(bob)
    assert [s.room.id for s in lobby.my_rooms] == [room.id] and lobby.public_rooms == []


async def test_private_room_is_invisible_to_outsiders(runtime):
    rooms, chat = runtime.services.rooms, runtime.services.chat
    membership = runtime.services.membership
    alice, _ = await sign_up(runtime, "alice")
    mallory, _ = await sign_up(runtime, "mallory")
    secret = await rooms.create_room(alice, name="Secret", private=True)
    await chat.post_message(alice, secret.id, "the plan")
    assert (await rooms.list_rooms(mallory)).public_rooms == []
    for attempt in (
        rooms.get_room_access(mallory, secret.id),
        membership.join(mallory, secret.id),
        membership.list_participants(mallory, secret.id),
        chat.list_messages(mallory, secret.id),
        chat.catch_up(mallory, secret.id, 0),
        chat.post_message(mallory, secret.id, "hi"),
        runtime.services.live.watch(mallory, secret.id, object()),
    ):
        with pytest.raises(NotFound) as caught:
            await attempt
        assert caught.value.message == "Room not found."
    with pytest.raises(NotFound) as missing:
        await rooms.get_room_access(mallory, 999_999)
    assert missing.value.message == "Room not found."  # same answer as for an existing private room


async def test_viewer_of_public_room_cannot_post_until_joining(runtime):
    rooms, chat = runtime.services.rooms, runtime.services.chat
    membership = runtime.services.membership
    alice, _ = await sign_up(runtime, "alice")
    bob, _ = await sign_up(runtime, "bob")
    room = await rooms.create_room(alice, name="Open")
    await chat.post_message(alice, room.id, "welcome")
    assert [m.body for m in (await chat.list_messages(bob, room.id)).messages] == ["welcome"]
    with pytest.raises(Forbidden):
        await chat.post_message(bob, room.id, "me too")
    await membership.join(bob, room.id)
    await chat.post_message(bob, room.id, "me too")


async def test_message_is_trimmed_and_limited(runtime):
    chat = runtime.services.chat
    alice, _ = await sign_up(runtime, "alice", "Alice")
    room = await runtime.services.rooms.create_room(alice, name="R")
    message = await chat.post_message(alice, room.id, "  hello\nworld  \n")
    assert message.body == "hello\nworld" and message.author_name == "Alice"
    assert message.created_at.tzinfo is not None
    for bad, fragment in (("   \n ", "empty"), ("x" * 4001, "too long")):
        with pytest.raises(ValidationError) as caught:
            await chat.post_message(alice, room.id, bad)
        assert fragment in caught.value.message
    await chat.post_message(alice, room.id, "x" * 4000)
    assert len((await chat.list_messages(alice, room.id)).messages) == 2  # nothing invalid was saved


@pytest.mark.settings(message_burst=0)  # many messages at once: no rate limit
async def test_catch_up_returns_the_new_messages_a_reconnecting_view_missed(runtime):
    chat = runtime.services.chat
    alice, _ = await sign_up(runtime, "alice")
    room = await runtime.services.rooms.create_room(alice, name="R")
    other = await runtime.services.rooms.create_room(alice, name="Other")
    first = await chat.post_message(alice, room.id, "seen")
    await chat.post_message(alice, other.id, "elsewhere")
    await chat.post_message(alice, room.id, "missed 1")
    await chat.post_message(alice, room.id, "missed 2")
    assert [m.body for m in (await chat.catch_up(alice, room.id, first.id)).new] == ["missed 1", "missed 2"]
    assert [m.body for m in (await chat.catch_up(alice, room.id, 0)).new] == ["seen", "missed 1", "missed 2"]
    for i in range(chat.page_size):
        await chat.post_message(alice, room.id, f"flood {i}")
    assert await chat.catch_up(alice, room.id, first.id) is None  # too much missed: reload the newest page
    for bad in (-1, 2**40, True):
        with pytest.raises(ValidationError):
            await chat.catch_up(alice, room.id, bad)


@pytest.mark.settings(message_burst=0)  # many messages at once: no rate limit
async def test_history_pages_back_by_keyset(runtime):
    chat = runtime.services.chat
    alice, _ = await sign_up(runtime, "alice")
    room = await runtime.services.rooms.create_room(alice, name="R")
    other = await runtime.services.rooms.create_room(alice, name="Other")
    for i in range(120):
        await chat.post_message(alice, room.id, f"m{i}")
        if i % 10 == 0:
            await chat.post_message(alice, other.id, f"other {i}")
    seen, before = [], None
    pages = []
    while True:
        page = await chat.list_messages(alice, room.id, before_id=before)
        pages.append((len(page.messages), page.has_older))
        seen = [m.body for m in page.messages] + seen
        if not page.has_older:
            break
        before = page.messages[0].id
    assert pages == [(50, True), (50, True), (20, False)]
    await runtime.pubsub.settled()
    assert seen == [f"m{i}" for i in range(120)]


async def test_lobby_orders_rooms_by_newest_activity_with_preview(runtime):
    rooms, chat = runtime.services.rooms, runtime.services.chat
    alice, _ = await sign_up(runtime, "alice", "Alice")
    first = await rooms.create_room(alice, name="First")
    second = await rooms.create_room(alice, name="Second")
    await chat.post_message(alice, second.id, "older news")
    await chat.post_message(alice, first.id, "latest news")
    lobby = await rooms.list_rooms(alice)
    assert [s.room.name for s in lobby.my_rooms] == ["First", "Second"]
    assert lobby.my_rooms[0].last_message.body == "latest news"
    assert lobby.my_rooms[0].last_message.author_name == "Alice"


async def test_message_is_published_after_commit(runtime):
    chat = runtime.services.chat
    alice, _ = await sign_up(runtime, "alice")
    room = await runtime.services.rooms.create_room(alice, name="R")
    seen = []

    async def on_event(event):
        stored = await chat.list_messages(alice, room.id)  # committed before anyone hears of it
        seen.append((event, [m.id for m in stored.messages]))

    runtime.pubsub.subscribe(room_topic(room.id), on_event)
    message = await chat.post_message(alice, room.id, "hello")
    await runtime.pubsub.settled()
    assert seen == [(MessagePosted(room_id=room.id, message_id=message.id), [message.id])]


class Recorder:
    def __init__(self):
        self.messages = []
        self.participant_changes = 0
        self.room_changes = 0
        self.deleted = False

    async def on_message(self, message):
        self.messages.append(message.body)

    async def on_participants_changed(self):
        self.participant_changes += 1

    async def on_room_changed(self):
        self.room_changes += 1

    async def on_room_deleted(self):
        self.deleted = True


async def test_live_rooms_deliver_only_to_watchers_of_that_room(runtime):
    services = runtime.services
    alice, _ = await sign_up(runtime, "alice")
    bob, _ = await sign_up(runtime, "bob")
    room_a = await services.rooms.create_room(alice, name="A")
    room_b = await services.rooms.create_room(alice, name="B")
    in_a, also_in_a, in_b = Recorder(), Recorder(), Recorder()
    stop_a = await services.live.watch(alice, room_a.id, in_a)
    await services.live.watch(bob, room_a.id, also_in_a)
    await services.live.watch(alice, room_b.id, in_b)
    await services.membership.join(bob, room_a.id)
    await services.chat.post_message(alice, room_a.id, "for A")
    await runtime.pubsub.settled()
    assert in_a.messages == also_in_a.messages == ["for A"] and in_b.messages == []
    await runtime.pubsub.settled()
    assert in_a.participant_changes == 1 and in_b.participant_changes == 0
    await services.room_settings.update_room_settings(
        alice, room_a.id, RoomSettingsChanges(members_can_invite=True, guests_can_use_ai=True)
    )
    await runtime.pubsub.settled()
    assert in_a.room_changes == also_in_a.room_changes == 1 and in_b.room_changes == 0
    stop_a()
    await services.chat.post_message(alice, room_a.id, "second")
    await runtime.pubsub.settled()
    assert in_a.messages == ["for A"] and also_in_a.messages == ["for A", "second"]


async def test_the_owner_renames_a_room_with_the_rules_of_creation(runtime):
    services = runtime.services
    alice, _ = await sign_up(runtime, "alice")
    bob, _ = await sign_up(runtime, "bob")
    room = await services.rooms.create_room(alice, name="Plans", topic="old")
    await services.membership.join(bob, room.id)
    watcher = Recorder()
    await services.live.watch(bob, room.id, watcher)
    renamed = await services.room_settings.update_room_settings(
        alice, room.id, RoomSettingsChanges(name="  Launch\nplans ", topic="Friday")
    )
    assert (renamed.name, renamed.topic) == ("Launch plans", "Friday")
    await runtime.pubsub.settled()
    assert watcher.room_changes == 1
    await services.room_settings.update_room_settings(
        alice, room.id, RoomSettingsChanges(name="Launch plans", topic="Friday")
    )
    await runtime.pubsub.settled()
    assert watcher.room_changes == 1  # nothing changed, nobody told
    with pytest.raises(ValidationError) as refused:
        await services.room_settings.update_room_settings(
            alice, room.id, RoomSettingsChanges(name=" ", topic="x" * 10_000)
        )
    assert set(refused.value.fields) == {"name", "topic"}
    with pytest.raises(Forbidden):
        await services.room_settings.update_room_settings(bob, room.id, RoomSettingsChanges(name="Mine now", topic=""))
    (summary,) = (await services.rooms.list_rooms(alice)).my_rooms
    assert (summary.room.name, summary.room.topic) == ("Launch plans", "Friday")


async def test_room_settings_are_saved_all_at_once_or_not_at_all_and_told_once(runtime):
    services = runtime.services
    alice, _ = await sign_up(runtime, "alice")
    room = await services.rooms.create_room(alice, name="Plans")
    watcher = Recorder()
    await services.live.watch(alice, room.id, watcher)
    too_long = "x" * (services.ai_settings.max_instruction_chars + 1)
    everything = RoomSettingsChanges(
        name="Launch", topic="Friday", mode="every", members_can_invite=True, instruction=too_long
    )
    with pytest.raises(ValidationError) as refused:
        await services.room_settings.update_room_settings(alice, room.id, everything)
    assert set(refused.value.fields) == {"instruction"}
    (summary,) = (await services.rooms.list_rooms(alice)).my_rooms
    assert (summary.room.name, summary.room.topic, summary.room.members_can_invite) == ("Plans", "", False)
    assert (await services.ai_settings.get_ai_settings(alice, room.id)).settings.mode.value == "mention"
    await runtime.pubsub.settled()
    assert watcher.room_changes == 0

    saved = await services.room_settings.update_room_settings(
        alice, room.id, replace(everything, instruction="Be brief.")
    )
    assert (saved.name, saved.topic, saved.members_can_invite) == ("Launch", "Friday", True)
    ai = (await services.ai_settings.get_ai_settings(alice, room.id)).settings
    assert (ai.mode.value, ai.instruction) == ("every", "Be brief.")
    await runtime.pubsub.settled()
    assert watcher.room_changes == 1  # one event for the three kinds of change


async def test_the_owner_deletes_a_room_for_good_after_typing_its_name(runtime):
    services = runtime.services
    alice, _ = await sign_up(runtime, "alice")
    bob, _ = await sign_up(runtime, "bob")
    room = await services.rooms.create_room(alice, name="Old project")
    kept = await services.rooms.create_room(alice, name="Kept")
    await services.membership.join(bob, room.id)
    await services.chat.post_message(bob, room.id, "bye")
    await services.invites.create_invite(alice, room.id)
    watcher = Recorder()
    await services.live.watch(bob, room.id, watcher)
    with pytest.raises(ValidationError):
        await services.rooms.delete_room(alice, room.id, confirm_name="Old")
    with pytest.raises(Forbidden):
        await services.rooms.delete_room(bob, room.id, confirm_name="Old project")
    await runtime.pubsub.settled()
    assert not watcher.deleted and (await services.chat.list_messages(alice, room.id)).messages

    await services.rooms.delete_room(alice, room.id, confirm_name=" Old project ")
    await runtime.pubsub.settled()
    assert watcher.deleted
    for actor in (alice, bob):
        with pytest.raises(NotFound):
            await services.rooms.get_room_access(actor, room.id)
    with runtime.engine.connect() as conn:
        for table in ("messages", "participants", "invites"):
            left = conn.execute(text(f"SELECT count(*) FROM {table} WHERE room_id = :r"), {"r": room.id}).scalar()
            assert left == 0, table
    assert [s.room.name for s in (await services.rooms.list_rooms(alice)).my_rooms] == ["Kept"]
    assert (await services.rooms.get_room_access(alice, kept.id)).room.name == "Kept"


async def test_out_of_range_ids_are_not_found_on_every_backend(runtime):
    alice, _ = await sign_up(runtime, "alice")
    room = await runtime.services.rooms.create_room(alice, name="R")
    for bad in (0, -1, 2**31, 2**63):
        with pytest.raises(NotFound):
            await runtime.services.rooms.get_room_access(alice, bad)
    with pytest.raises(ValidationError):
        await runtime.services.chat.list_messages(alice, room.id, before_id=2**40)


async def test_concurrent_joins_of_one_user_make_one_participant(runtime):
    alice, _ = await sign_up(runtime, "alice")
    bob, _ = await sign_up(runtime, "bob")
    room = await runtime.services.rooms.create_room(alice, name="Busy")
    joined = await asyncio.gather(*(runtime.services.membership.join(bob, room.id) for _ in range(5)))
    assert len({p.id for p in joined}) == 1
    assert len(await runtime.services.membership.list_participants(alice, room.id)) == 3  # with the AI


async def test_a_huge_message_is_refused_before_it_is_cleaned(runtime):
    """A 999k-character message was cleaned on the event loop before the length check (/healthz took
    up to 1 s during ten such sends). Refusing it must cost no more than checking a message of the
    longest allowed size (timed in the same run, so the machine's speed cancels out)."""
    alice, _ = await sign_up(runtime, "alice")
    room = await runtime.services.rooms.create_room(alice, name="R")
    chat = runtime.services.chat
    longest = "é" * chat.max_message_chars

    def best_of(body: str) -> float:
        times = []
        for _ in range(5):
            started = time.perf_counter()
            with contextlib.suppress(ValidationError):
                chat.validate_body(body)
            times.append(time.perf_counter() - started)
        return min(times)

    huge = "x\x00" * 499_500
    with pytest.raises(ValidationError) as refused:
        await chat.post_message(alice, room.id, huge)
    assert refused.value.fields["body"].startswith("Message is too long: 999000 characters")
    assert best_of(huge) <= 2 * best_of(longest) + 0.001
    assert (await chat.list_messages(alice, room.id)).messages == []
    # Whitespace that is trimmed away, and characters that the normalisation shortens, still count
    # only after cleaning: a message at the limit once trimmed is accepted.
    padded = " " * 500 + "e\u0301" * (chat.max_message_chars // 2) + "\n" * 500
    assert (await chat.post_message(alice, room.id, padded)).body == "é" * (chat.max_message_chars // 2)

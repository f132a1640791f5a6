"""A person's or bot's own topic hears each room they come into or are out of (RoomListChanged), which
the room socket's `user:<id>` channel passes on; through the real services on SQLite and PostgreSQL."""

from __future__ import annotations

from chatapp.app import Runtime
from chatapp.domain.events import RoomListChanged, user_topic
from tests.domain.helpers import sign_up


def listen(runtime: Runtime, user_id: int | None) -> list[tuple[int, str]]:
    heard: list[tuple[int, str]] = []

    def on_event(event: object) -> None:
        if isinstance(event, RoomListChanged):
            assert event.user_id == user_id
            heard.append((event.room_id, event.change))

    runtime.pubsub.subscribe(user_topic(user_id or 0), on_event)
    return heard


async def test_each_way_into_a_room_and_out_of_it_is_told_to_the_one_it_concerns(runtime: Runtime) -> None:
    s = runtime.services
    alice, _ = await sign_up(runtime, "alice")
    bob, _ = await sign_up(runtime, "bob")
    alice_heard, bob_heard = listen(runtime, alice.user_id), listen(runtime, bob.user_id)
    room = await s.rooms.create_room(alice, name="Ops", private=True)
    link = await s.invites.create_invite(alice, room.id)
    await s.invites.accept_as_user(bob, link.token)
    await s.invites.accept_as_user(bob, link.token)  # already in: nothing new
    await s.membership.leave(bob, room.id)
    await s.invites.accept_as_user(bob, link.token)
    bob_place = next(p for p in await s.membership.list_participants(alice, room.id) if p.user_id == bob.user_id)
    await s.membership.remove_participant(alice, room.id, bob_place.id)
    await s.membership.readmit(alice, room.id, bob_place.id)
    await s.rooms.delete_room(alice, room.id, confirm_name="Ops")
    await runtime.pubsub.settled()
    assert alice_heard == [(room.id, "joined"), (room.id, "deleted")]
    assert bob_heard == [
        (room.id, "joined"),
        (room.id, "left"),
        (room.id, "joined"),
        (room.id, "removed"),
        (room.id, "joined"),
        (room.id, "deleted"),
    ]


async def test_a_bot_hears_it_was_added_and_a_public_room_joined_is_told(runtime: Runtime) -> None:
    s = runtime.services
    alice, _ = await sign_up(runtime, "alice")
    bob, _ = await sign_up(runtime, "bob")
    bot = await s.tokens.create_bot(alice, username="helper", display_name="Helper")
    bot_heard, bob_heard = listen(runtime, bot.id), listen(runtime, bob.user_id)
    room = await s.rooms.create_room(alice, name="Lobby")
    await s.membership.add_bot(alice, room.id, "helper")
    await s.membership.add_bot(alice, room.id, "helper")  # already in: nothing new
    await s.membership.join(bob, room.id)
    await s.membership.join(bob, room.id)
    await runtime.pubsub.settled()
    assert bot_heard == [(room.id, "joined")]
    assert bob_heard == [(room.id, "joined")]

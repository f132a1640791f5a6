"""A tab names each message it sends; sending it again (after a reconnect, a reload) never saves a copy."""

from __future__ import annotations

import asyncio

import pytest

from chatapp.domain.errors import Conflict, ValidationError
from chatapp.domain.events import MessagePosted, room_topic
from chatapp.domain.limits import RateLimited
from tests.domain.helpers import sign_up

CID = "tab1-0001-abcdef"


async def _room_with(runtime, *names):
    actors = [(await sign_up(runtime, name))[0] for name in names]
    room = await runtime.services.rooms.create_room(actors[0], name="Resends")
    for other in actors[1:]:
        await runtime.services.membership.join(other, room.id)
    return room, actors


def _count_posts(runtime, room_id):
    posted: list[MessagePosted] = []

    def on_event(event):
        if isinstance(event, MessagePosted):
            posted.append(event)

    runtime.pubsub.subscribe(room_topic(room_id), on_event)
    return posted


async def _bodies(runtime, actor, room_id):
    return [m.body for m in (await runtime.services.chat.list_messages(actor, room_id)).messages]


async def test_a_resend_returns_the_first_message_and_publishes_nothing_more(runtime):
    chat = runtime.services.chat
    room, (alice,) = await _room_with(runtime, "alice")
    posted = _count_posts(runtime, room.id)
    first = await chat.post_message(alice, room.id, "hello", client_message_id=CID)
    again = await chat.post_message(alice, room.id, "hello", client_message_id=CID)
    assert again.id == first.id and again.body == "hello"
    assert await _bodies(runtime, alice, room.id) == ["hello"]
    assert [e.message_id for e in posted] == [first.id]


async def test_the_same_client_id_from_another_author_is_another_message(runtime):
    chat = runtime.services.chat
    room, (alice, bob) = await _room_with(runtime, "alice", "bob")
    mine = await chat.post_message(alice, room.id, "from alice", client_message_id=CID)
    theirs = await chat.post_message(bob, room.id, "from bob", client_message_id=CID)
    assert mine.id != theirs.id
    assert await _bodies(runtime, alice, room.id) == ["from alice", "from bob"]


async def test_messages_without_client_ids_never_clash(runtime):
    chat = runtime.services.chat
    room, (alice,) = await _room_with(runtime, "alice")
    for _ in range(3):
        await chat.post_message(alice, room.id, "same text")
    assert await _bodies(runtime, alice, room.id) == ["same text"] * 3


async def test_simultaneous_sends_of_one_message_save_it_once(runtime):
    chat = runtime.services.chat
    room, (alice,) = await _room_with(runtime, "alice")
    posted = _count_posts(runtime, room.id)
    results = await asyncio.gather(
        *(chat.post_message(alice, room.id, "once", client_message_id=CID) for _ in range(5))
    )
    assert len({m.id for m in results}) == 1
    assert await _bodies(runtime, alice, room.id) == ["once"]
    assert len(posted) == 1


@pytest.mark.parametrize("bad", ["short", "x" * 65, "has space ok", "<script>", 42, ""])
async def test_a_malformed_client_id_is_refused_and_nothing_is_saved(runtime, bad):
    chat = runtime.services.chat
    room, (alice,) = await _room_with(runtime, "alice")
    with pytest.raises(ValidationError) as refused:
        await chat.post_message(alice, room.id, "hello", client_message_id=bad)
    assert "client_message_id" in refused.value.fields
    assert await _bodies(runtime, alice, room.id) == []


async def test_a_resend_of_a_message_deleted_since_is_not_saved_again(runtime):
    chat = runtime.services.chat
    room, (alice,) = await _room_with(runtime, "alice")
    first = await chat.post_message(alice, room.id, "oops", client_message_id=CID)
    await chat.delete_message(alice, room.id, first.id)
    with pytest.raises(Conflict):
        await chat.post_message(alice, room.id, "oops", client_message_id=CID)
    assert await _bodies(runtime, alice, room.id) == []


@pytest.mark.settings(message_burst=2, message_per_second=0.1)
async def test_resends_do_not_use_up_the_post_limit(runtime):
    chat = runtime.services.chat
    room, (alice,) = await _room_with(runtime, "alice")
    await chat.post_message(alice, room.id, "one", client_message_id=CID)
    for _ in range(4):  # a tab resending after reconnects
        await chat.post_message(alice, room.id, "one", client_message_id=CID)
    await chat.post_message(alice, room.id, "two", client_message_id="tab1-0002-abcdef")
    with pytest.raises(RateLimited):  # the limit still holds for new messages
        await chat.post_message(alice, room.id, "three", client_message_id="tab1-0003-abcdef")
    assert await _bodies(runtime, alice, room.id) == ["one", "two"]


@pytest.mark.settings(message_burst=2, message_per_second=0.1)
async def test_resends_beyond_the_burst_are_answered_not_refused(runtime):
    chat = runtime.services.chat
    room, (alice,) = await _room_with(runtime, "alice")
    ids = [f"tab1-000{i}-abcdef" for i in range(2)]
    sent = [await chat.post_message(alice, room.id, f"m{i}", client_message_id=cid) for i, cid in enumerate(ids)]
    # The bucket is empty now; the tab reconnects and sends both again.
    again = [await chat.post_message(alice, room.id, f"m{i}", client_message_id=cid) for i, cid in enumerate(ids)]
    assert [m.id for m in again] == [m.id for m in sent]
    assert await _bodies(runtime, alice, room.id) == ["m0", "m1"]

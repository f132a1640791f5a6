"""Two requests racing for the same row: the loser gets the domain's words, never a database error.

The store says only that the row exists already (AlreadyExists, no prose); the operation that may meet
it says what it means. On PostgreSQL both requests pass the domain's own check before either commits,
so the unique index decides; on SQLite the single writer makes the second see the first.
"""

from __future__ import annotations

import asyncio

import pytest

from chatapp.domain.accounts import SignUpForm
from chatapp.domain.errors import Conflict, ValidationError
from tests.domain.helpers import PASSWORD, sign_up


async def test_two_sign_ups_for_one_username_at_once_make_one_account_and_one_clear_refusal(runtime):
    forms = [SignUpForm(username="twin", display_name=name, password=PASSWORD) for name in ("One", "Two")]
    outcomes = await asyncio.gather(*(runtime.services.accounts.sign_up(f) for f in forms), return_exceptions=True)
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(refused) == 1 and isinstance(refused[0], ValidationError), outcomes
    assert refused[0].fields == {"username": "That username is taken."}


@pytest.mark.parametrize("attempts", [2, 4])
async def test_one_person_joining_a_room_several_times_at_once_is_in_it_once(runtime, attempts):
    alice, _ = await sign_up(runtime, "alice")
    bob, _ = await sign_up(runtime, "bob")
    room = await runtime.services.rooms.create_room(alice, name="Open")
    joins = [runtime.services.membership.join(bob, room.id) for _ in range(attempts)]
    outcomes = await asyncio.gather(*joins, return_exceptions=True)
    assert all(not isinstance(o, BaseException) or isinstance(o, Conflict) for o in outcomes), outcomes
    assert any(not isinstance(o, BaseException) for o in outcomes)
    people = await runtime.services.membership.list_participants(alice, room.id)
    assert [p.display_name for p in people].count("Bob") == 1

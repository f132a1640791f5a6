"""A reply left in running_replies by a process that died (on SQLite: the one process, killed and
started again) is saved as interrupted by the next sweep, or taken over by the next ask; on both
databases (SQLite hands its times back without a zone)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chatapp.domain.ai_models import RunningReplyRecord
from chatapp.domain.models import MessageStatus
from tests.domain.helpers import sign_up


async def test_a_reply_left_by_a_dead_process_is_saved_as_interrupted_by_the_next_sweep(runtime) -> None:
    alice, _ = await sign_up(runtime, "alice")
    room = await runtime.services.rooms.create_room(alice, name="Ops")
    long_ago = datetime.now(UTC) - timedelta(minutes=1)
    left = RunningReplyRecord(room.id, "left0reply", "before-restart", None, "Half an ans", long_ago, long_ago)
    await runtime.tx.run(lambda uow: uow.running_replies.add(left), write=True)
    assert await runtime.services.ai.get_reply_in_progress(alice, room.id) is None  # silent too long
    assert await runtime.services.ai.sweep_lost_replies() == 1
    assert await runtime.services.ai.sweep_lost_replies() == 0
    saved = (await runtime.services.chat.list_messages(alice, room.id)).messages[-1]
    assert (saved.body, saved.status) == ("Half an ans", MessageStatus.INTERRUPTED)


async def test_a_reply_still_beating_is_shown_and_not_swept(runtime) -> None:
    alice, _ = await sign_up(runtime, "alice")
    room = await runtime.services.rooms.create_room(alice, name="Ops")
    now = datetime.now(UTC)
    live = RunningReplyRecord(room.id, "live0reply", "another-process", None, "So far", now, now)
    await runtime.tx.run(lambda uow: uow.running_replies.add(live), write=True)
    shown = await runtime.services.ai.get_reply_in_progress(alice, room.id)
    assert shown is not None and shown.text == "So far"
    assert await runtime.services.ai.sweep_lost_replies() == 0

"""A room hub's fan-out to the subscribers of one process: participant and room changes, and flow
control; through a transport that records what it was asked to send."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from chatapp.domain.models import Message, Participant, ParticipantKind
from chatapp.live.hub import FLUSH_INTERVAL_S, RoomHub
from chatapp.live.wire import MESSAGES_EVENT


@dataclass
class Tab:
    """Stands for a tab's room view (the Subscriber interface): records what it was shown."""

    client_id: str
    broken: bool = False
    hub: RoomHub | None = None
    closes_while_loading: Tab | None = None  # another tab closing while this one reads the database
    shown: list = field(default_factory=list)
    ready: bool = True
    connected: bool = True
    pending: list = field(default_factory=list)
    delivered_ids: list[int] = field(default_factory=list)
    resyncs: int = 0
    resynced_since: list = field(default_factory=list)

    def delivered(self, payloads: list) -> None:
        self.delivered_ids += [p["id"] for p in payloads]

    def resync(self, since=None) -> None:
        self.resyncs += 1
        self.resynced_since.append(since)

    async def load_people(self) -> list[Participant]:
        if self.closes_while_loading is not None:
            del self.hub.tabs[self.closes_while_loading.client_id]
        return []

    async def load_room(self) -> str:
        return "the room"

    def show_room(self, room: str) -> None:
        self.shown.append(room)

    def show_people(self, people: list[Participant]) -> None:
        if self.broken:
            raise RuntimeError("parent slot deleted")
        self.shown.append(people)


class Transport:
    """Records every send: (event, data, subscriber ids)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict, list[str]]] = []

    async def __call__(self, event: str, data: dict, to: list[str]) -> None:
        self.sent.append((event, data, to))


async def test_a_failing_or_closing_tab_does_not_keep_the_others_from_the_news(caplog):
    hub = RoomHub(1, Transport(), on_empty=lambda _: None)
    first, broken, closing, last = Tab("a"), Tab("b", broken=True), Tab("c"), Tab("d")
    first.hub, first.closes_while_loading = hub, closing
    for tab in (first, broken, closing, last):
        hub.tabs[tab.client_id] = tab
    with caplog.at_level(logging.ERROR):
        await hub.on_participants_changed()
    assert first.shown == [[]] and last.shown == [[]]
    assert closing.shown == []  # it closed while the people were read: nothing is sent to it
    assert "updating a tab failed" in caplog.text


async def test_a_gap_has_every_tab_catch_up_with_what_was_written_since_and_read_the_room_again():
    hub = RoomHub(1, Transport(), on_empty=lambda _: None)
    tabs = [Tab("a"), Tab("b")]
    for tab in tabs:
        hub.add(tab)
    since = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)
    await hub.on_gap(since)
    assert [tab.resynced_since for tab in tabs] == [[since], [since]]
    assert all(tab.shown == ["the room", []] for tab in tabs)  # the room and its people, read again


def message(number: int) -> Message:
    return Message(number, 1, 7, "Ann", ParticipantKind.USER, f"message {number}", datetime.now(UTC))


async def test_a_tab_that_falls_behind_is_left_out_until_it_has_taken_in_what_it_was_sent_then_catches_up():
    transport = Transport()
    hub = RoomHub(1, transport, on_empty=lambda _: None, max_backlog=3)
    slow, quick, simulated = Tab("slow"), Tab("quick"), Tab("simulated", connected=False)
    for tab in (slow, quick, simulated):
        hub.add(tab)

    async def post(number: int) -> None:
        await asyncio.sleep(FLUSH_INTERVAL_S * 1.5)  # each goes out in a broadcast of its own
        await hub.on_message(message(number))

    for number in (1, 2, 3, 4, 5):
        await post(number)
        hub.received("quick", number)  # the quick tab says it took each one in; the slow one says nothing
    assert quick.delivered_ids == simulated.delivered_ids == [1, 2, 3, 4, 5]  # a page without a socket: no count
    assert slow.delivered_ids == [1, 2, 3] and slow.resyncs == 0  # three behind: left out

    hub.received("slow", 2)  # it reads again, but has not taken in all it was sent yet
    await post(6)
    assert slow.delivered_ids == [1, 2, 3] and slow.resyncs == 0
    hub.received("slow", 3)  # all of it: asked to catch up (from the database), and broadcast to again
    assert slow.resyncs == 1
    await post(7)
    assert slow.delivered_ids == [1, 2, 3, 7] and quick.delivered_ids == [1, 2, 3, 4, 5, 6, 7]

    hub.received("slow", 7)
    for number in (8, 9, 10, 11):
        await post(number)
    assert slow.delivered_ids[-4:] == [7, 8, 9, 10]  # three unanswered again: left out...
    hub.caught_up("slow")  # ...until its socket connects again and it asks for what it missed
    await post(12)
    assert slow.delivered_ids[-2:] == [10, 12] and slow.resyncs == 1
    sends = [(data["seq"], [m["id"] for m in data["messages"]], to) for event, data, to in transport.sent]
    assert all(event == MESSAGES_EVENT for event, _, _ in transport.sent)
    assert [seq for seq, _, _ in sends] == list(range(1, 13))  # one numbered send per message...
    assert sends[3] == (4, [4], ["quick", "simulated"])  # ...to those who keep up, serialised once for all

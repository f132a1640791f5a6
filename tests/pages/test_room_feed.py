"""The room feed's fan-out of participant and room changes to the tabs of one process."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from chatapp.domain.models import Participant
from chatapp.pages.room_feed import RoomFeed


@dataclass
class Tab:
    """Stands for a tab's room view (the FeedTab interface): records what it was shown."""

    client_id: str
    broken: bool = False
    feed: RoomFeed | None = None
    closes_while_loading: Tab | None = None  # another tab closing while this one reads the database
    shown: list = field(default_factory=list)
    ready: bool = True
    pending: list = field(default_factory=list)

    async def load_people(self) -> list[Participant]:
        if self.closes_while_loading is not None:
            del self.feed.tabs[self.closes_while_loading.client_id]
        return []

    def show_people(self, people: list[Participant]) -> None:
        if self.broken:
            raise RuntimeError("parent slot deleted")
        self.shown.append(people)


async def test_a_failing_or_closing_tab_does_not_keep_the_others_from_the_news(caplog):
    feed = RoomFeed(1, on_empty=lambda _: None)
    first, broken, closing, last = Tab("a"), Tab("b", broken=True), Tab("c"), Tab("d")
    first.feed, first.closes_while_loading = feed, closing
    for tab in (first, broken, closing, last):
        feed.tabs[tab.client_id] = tab
    with caplog.at_level(logging.ERROR):
        await feed.on_participants_changed()
    assert first.shown == [[]] and last.shown == [[]]
    assert closing.shown == []  # it closed while the people were read: nothing is sent to it
    assert "updating a tab failed" in caplog.text

"""Answering a tab that (re)connects: what it missed, the AI's reply in progress, who is in the room."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from nicegui import Client, ui

from chatapp.domain.ai_models import ReplyInProgress
from chatapp.domain.errors import DomainError, NotAuthenticated
from chatapp.domain.models import Participant, RoomAccess
from chatapp.domain.services import Services
from chatapp.live.catch_up import changes_from
from chatapp.live.hub import RoomHub
from chatapp.live.payloads import payloads_of
from chatapp.pages.message_list import MessageList
from chatapp.pages.session import TabSession

log = logging.getLogger(__name__)


class CatchUpAnswers:
    """The catch-up requests of a tab's message list, for RoomView."""

    services: Services
    tab: TabSession
    access: RoomAccess
    client: Client
    client_id: str
    messages: MessageList | None
    hub: RoomHub | None
    opened_at: datetime
    caught_up_once: bool
    gap_since: datetime | None  # this process missed news saved from then on (see RoomView.resync)
    _catch_up_lock: asyncio.Lock
    _catch_up_waiting: bool

    async def load_people(self) -> list[Participant] | None: ...
    def show_people(self, people: list[Participant]) -> None: ...

    async def catch_up(self, after_id: int, seen_until: datetime | None) -> None:
        """The tab's socket (re)connected: send what it may have missed. New messages after `after_id`;
        edits and deletions since `seen_until` (the server time of the latest news the browser is known
        to have had: a half-open connection can drop news long before the server notices); whether the
        AI is still answering; on a reconnect, who is in the room. Requests that come while one is
        answered are answered once, after it."""
        if self._catch_up_waiting:
            return
        self._catch_up_waiting = True
        async with self._catch_up_lock:
            self._catch_up_waiting = False
            await self._answer_catch_up(after_id, seen_until)

    async def _answer_catch_up(self, after_id: int, seen_until: datetime | None) -> None:
        assert self.messages is not None
        room_id = self.access.room.id
        started = datetime.now(UTC)
        if self.hub is not None:
            self.hub.caught_up(self.client_id)  # from here on it gets the broadcasts; before, the database
        try:
            actor = await self.tab.current()
            since = changes_from(seen_until, opened_at=self.opened_at, now=started)
            written_since = since if self.gap_since is None else min(since, self.gap_since)
            self.gap_since = None
            missed = await self.services.chat.catch_up(actor, room_id, after_id, since, created_since=written_since)
            if missed is not None:
                by_id = {m.id: m for m in [*missed.new, *missed.edited]}  # one copy of a new message edited since
                payloads = await payloads_of(sorted(by_id.values(), key=lambda m: m.id))
                self.messages.catch_up(payloads, missed.deleted_ids, synced_at=started)
            else:  # too much missed: start from the newest page
                page = await self.services.chat.list_messages(actor, room_id)
                self.messages.reset(await payloads_of(page.messages), has_older=page.has_older, synced_at=started)
            running = await self.services.ai.get_reply_in_progress(actor, room_id)
            self.messages.run_method("syncAi", running_view(running))
            if self.caught_up_once:  # the people panel's own updates were queued for the first connect
                people = await self.load_people()
                if people is not None:
                    self.show_people(people)
            self.caught_up_once = True
        except NotAuthenticated:
            return
        except DomainError:
            with self.client:
                ui.navigate.reload()  # e.g. no longer allowed in: the page says why
        except Exception:
            log.exception("catching up a reconnected tab failed")
            self.messages.run_method("catchUpFailed")


def running_view(running: ReplyInProgress | None) -> dict[str, object] | None:
    """A reply in progress as a page opened mid-reply starts from it."""
    if running is None:
        return None
    return {"reply_id": running.reply_id, "text": running.text, "replaces": running.replaces_id}

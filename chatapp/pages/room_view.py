"""One tab's view of a room: what the room's hub calls, and what the page's elements call back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from nicegui import Client, ui

from chatapp.domain.ai_models import ReplyInProgress
from chatapp.domain.errors import DomainError, NotAuthenticated
from chatapp.domain.models import Participant, Room, RoomAccess
from chatapp.domain.services import Services
from chatapp.live.hub import RoomHub
from chatapp.live.payloads import Payload, payloads_of
from chatapp.pages.message_list import MessageList
from chatapp.pages.people_list import PeopleList
from chatapp.pages.room_catch_up import CatchUpAnswers, running_view
from chatapp.pages.room_header import RoomHeader
from chatapp.pages.room_people import PeopleActions
from chatapp.pages.session import TabSession

log = logging.getLogger(__name__)


class RoomView(PeopleActions, CatchUpAnswers):
    """One tab's view of a room; its room's hub (live/hub.py) sends it the live news."""

    def __init__(
        self, services: Services, tab: TabSession, access: RoomAccess, client: Client, ai_name: str = "Assistant"
    ) -> None:
        self.services = services
        self.tab = tab
        self.access = access
        self.client = client
        self.client_id = client.id
        self.messages: MessageList | None = None
        self.ready = False  # the hub buffers messages in `pending` until the page is built
        self.pending: list[Payload] = []
        self.hub: RoomHub | None = None  # the room's hub in this process, once the tab is in it
        self.people_list: PeopleList | None = None
        self.ai_name = ai_name
        self.on_left: list[Callable[[], None]] = []  # stops the tab's live feeds when it leaves the room
        self.opened_at = datetime.now(UTC)  # before its history is read: it has every change up to here
        self.caught_up_once = False
        self.gap_since: datetime | None = None
        self._catch_up_lock = asyncio.Lock()
        self._catch_up_waiting = False
        self.header = RoomHeader(services, tab, client)

    def delivered(self, payloads: list[Payload]) -> None:
        """The room's broadcast sent these to this tab."""
        if self.messages is not None:
            self.messages.record(payloads)

    def forget(self, message_id: int) -> None:
        """The room's broadcast removed a deleted message from this tab."""
        if self.messages is not None:
            self.messages.forget(message_id)

    @property
    def connected(self) -> bool:
        """Whether the tab's socket is connected (a page simulated in tests never has one)."""
        return self.client.has_socket_connection

    def received(self, seq: int) -> None:
        """The page has taken in the room's broadcasts up to `seq`."""
        if self.hub is not None:
            self.hub.received(self.client_id, seq)

    def resync(self, since: datetime | None = None) -> None:
        """The room's broadcasts left this tab out while it was behind (or this process missed news saved
        since `since`): it asks for what it missed."""
        if since is not None:
            self.gap_since = since if self.gap_since is None else min(self.gap_since, since)
        if self.messages is not None:
            self.messages.run_method("resync")

    def participant_id(self) -> int | None:
        """The tab's participant in the room (None when only viewing a public room)."""
        return self.access.me.id if self.access.me else None

    def left_room(self, *, reason: str) -> None:
        """This tab's person is no longer in the room ("you": left in another tab, "removed", or the
        room was "deleted"): stop receiving the room and go to the lobby, which says why. Whatever the
        browser does, the server sends it nothing more."""
        for stop in self.on_left:
            stop()
        self.on_left.clear()
        with self.client:
            ui.navigate.to(f"/?left={reason}")

    async def delete_message(self, message_id: int) -> None:
        """The Delete button of a message (the domain decides whether this person may)."""
        await self._act(lambda actor: self.services.chat.delete_message(actor, self.access.room.id, message_id))

    def show(self, history: list[Payload], *, has_older: bool, running: ReplyInProgress | None) -> None:
        """Build the message list from the history and what arrived while the page was being built, and
        the AI's reply being written, if any."""
        self.messages = MessageList(
            self.access.room.id,
            [*history, *self.pending],
            has_older=has_older,
            on_load_older=self.load_older,
            on_catch_up=self.catch_up,
            on_stop_ai=self.stop_ai,
            on_regenerate_ai=self.regenerate_ai,
            ai_name=self.ai_name,
            ai_running=running_view(running),
            can_act=self.access.can_post,
            me=self.access.me.id if self.access.me else 0,
            can_moderate=self.access.can_moderate,
            on_delete=self.delete_message,
            synced_at=self.opened_at,
            on_received=self.received,
            ack_every=max(1, self.hub.flow.max_backlog // 4) if self.hub else 50,
        )
        self.pending.clear()
        self.ready = True

    async def stop_ai(self) -> None:
        """The Stop button of a running AI reply."""
        await self._act(lambda actor: self.services.ai.stop_reply(actor, self.access.room.id))

    async def regenerate_ai(self) -> None:
        """The Regenerate button of the AI's latest reply."""
        await self._act(lambda actor: self.services.ai.regenerate_reply(actor, self.access.room.id))

    async def load_people(self) -> list[Participant] | None:
        """The room's participants as this tab's user may see them (None if they no longer may)."""
        try:
            return await self.services.membership.list_participants(await self.tab.current(), self.access.room.id)
        except DomainError:
            return None

    async def load_room(self) -> Room | None:
        """The room as this tab's person may see it now (None if they no longer may)."""
        try:
            return (await self.services.rooms.get_room_access(await self.tab.current(), self.access.room.id)).room
        except DomainError:
            return None

    def show_room(self, room: Room) -> None:
        """The room's settings changed (its name or topic, whether members may invite): follow them."""
        if self.client.is_deleted:
            return
        self.access = RoomAccess(room=room, me=self.access.me)
        self.header.show_room(self.access, room)

    def show_role_controls(self) -> None:
        """The header's buttons as this person's role now allows."""
        self.header.show_role_controls(self.access)

    async def load_older(self, before_id: int) -> None:
        assert self.messages is not None
        try:
            actor = await self.tab.current()
            page = await self.services.chat.list_messages(actor, self.access.room.id, before_id=before_id)
            payloads = await payloads_of(page.messages)
        except NotAuthenticated:
            return
        except Exception as exc:
            if not isinstance(exc, DomainError):
                log.exception("loading older messages failed")
            ui.notify(getattr(exc, "message", "Older messages could not be loaded; please try again."), type="warning")
            self.messages.loading_failed()
            return
        self.messages.prepend(payloads, has_older=page.has_older)

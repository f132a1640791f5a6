"""The room page: history, live messages, the composer and the participants panel."""

from __future__ import annotations

import asyncio
import logging

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import Client, background_tasks, ui

from chatapp.domain.ai import RunningReply
from chatapp.domain.errors import DomainError, NotAuthenticated, NotFound, ValidationError
from chatapp.domain.models import Participant, Role, RoomAccess
from chatapp.domain.services import Services
from chatapp.pages.composer import Composer
from chatapp.pages.message_list import MessageList, Payload, payloads_of
from chatapp.pages.people_list import PeopleList
from chatapp.pages.room_feed import RoomFeeds
from chatapp.pages.room_settings import open_room_settings
from chatapp.pages.session import TabSession, session_token, sign_in_url
from chatapp.pages.theme import APP_NAME, header

log = logging.getLogger(__name__)


def not_found_page() -> None:
    """A 404 that says nothing about whether a private room exists."""
    ui.context.client.status_code = 404
    with ui.column().classes("page-narrow"):
        ui.label("Room not found").classes("text-2xl font-semibold")
        ui.label("It does not exist, or you do not have access to it.").classes("opacity-70")
        ui.link("Back to your rooms", "/")


class RoomView:
    """One tab's view of a room; its room's feed (pages/room_feed.py) sends it the live news."""

    def __init__(
        self, services: Services, tab: TabSession, access: RoomAccess, client: Client, ai_name: str = "Assistant"
    ) -> None:
        self.services = services
        self.tab = tab
        self.access = access
        self.client = client
        self.client_id = client.id
        self.messages: MessageList | None = None
        self.ready = False  # the feed buffers messages in `pending` until the page is built
        self.pending: list[Payload] = []
        self.people_list: PeopleList | None = None
        self.ai_name = ai_name

    def delivered(self, payloads: list[Payload]) -> None:
        """The room's broadcast sent these to this tab."""
        if self.messages is not None:
            self.messages.record(payloads)

    def show(self, history: list[Payload], *, has_older: bool) -> None:
        """Build the message list from the history and what arrived while the page was being built."""
        running = self.services.ai.running(self.access.room.id)
        self.messages = MessageList(
            self.access.room.id,
            [*history, *self.pending],
            has_older=has_older,
            on_load_older=self.load_older,
            on_catch_up=self.catch_up,
            on_stop_ai=self.stop_ai,
            on_regenerate_ai=self.regenerate_ai,
            ai_name=self.ai_name,
            ai_running=_running_view(running),
            can_act=self.access.can_post,
        )
        self.pending.clear()
        self.ready = True

    async def catch_up(self, after_id: int) -> None:
        """The tab's socket (re)connected: send what it may have missed since `after_id`."""
        assert self.messages is not None
        room_id = self.access.room.id
        try:
            actor = await self.tab.current()
            missed = await self.services.chat.since(actor, room_id, after_id)
            if missed is not None:
                self.messages.catch_up(await payloads_of(missed))
                return
            page = await self.services.chat.history(actor, room_id)  # too much missed: start from the newest
            self.messages.reset(await payloads_of(page.messages), has_older=page.has_older)
        except NotAuthenticated:
            return
        except DomainError:
            with self.client:
                ui.navigate.reload()  # e.g. no longer allowed in: the page says why
        except Exception:
            log.exception("catching up a reconnected tab failed")
            self.messages.run_method("catchUpFailed")

    async def stop_ai(self) -> None:
        """The Stop button of a running AI reply."""
        try:
            await self.services.ai.stop(await self.tab.current(), self.access.room.id)
        except DomainError as exc:
            with self.client:
                ui.notify(exc.message, type="warning")

    async def regenerate_ai(self) -> None:
        """The Regenerate button of the AI's latest reply."""
        try:
            await self.services.ai.regenerate(await self.tab.current(), self.access.room.id)
        except DomainError as exc:
            with self.client:
                ui.notify(exc.message, type="warning")

    async def load_people(self) -> list[Participant] | None:
        """The room's participants as this tab's user may see them (None if they no longer may)."""
        try:
            return await self.services.rooms.participants(await self.tab.current(), self.access.room.id)
        except DomainError:
            return None

    def show_people(self, people: list[Participant]) -> None:
        """Show a new list of participants."""
        if self.people_list is not None:
            self.people_list.show(people)

    async def load_older(self, before_id: int) -> None:
        assert self.messages is not None
        try:
            actor = await self.tab.current()
            page = await self.services.chat.history(actor, self.access.room.id, before_id=before_id)
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


def _running_view(running: RunningReply | None) -> dict[str, object] | None:
    """A reply in progress as a page opened mid-reply starts from it."""
    if running is None:
        return None
    replaces = running.replaces.id if running.replaces else None
    return {"reply_id": running.reply_id, "text": running.text, "replaces": replaces}


def register_room(services: Services, *, ai_name: str = "Assistant") -> None:
    """Register /rooms/{room_id}."""
    feeds = RoomFeeds()

    @ui.page("/rooms/{room_id}", title=APP_NAME)
    async def room_page(request: Request, room_id: str):
        token = session_token(request)
        actor = await services.accounts.authenticate(token)
        if actor is None:
            return RedirectResponse(sign_in_url(request.url.path), status_code=303)
        header(actor)
        try:
            access = await services.rooms.access(actor, int(room_id))
        except (NotFound, ValueError):
            not_found_page()
            return None
        client = ui.context.client
        tab = TabSession(services.accounts, token, actor, client)
        view = RoomView(services, tab, access, client, ai_name)
        # Subscribe before reading the history, so nothing posted in between is missed.
        # The tab joins the feed first, so a failed build still leaves through on_delete.
        feed = feeds.feed_for(access.room.id)
        leave_feed = feed.add(view)
        client.on_delete(leave_feed)
        tab.on_leave(leave_feed)  # a revoked session stops receiving at once, whatever its browser does
        stop_watching = await services.live.watch(actor, access.room.id, feed)
        client.on_delete(stop_watching)
        tab.on_leave(stop_watching)
        tab.watch_revocations(services.session_watch.watch)
        history = await services.chat.history(actor, access.room.id)
        payloads = await payloads_of(history.messages)
        people = await services.rooms.participants(actor, access.room.id)
        ui.page_title(f"{access.room.name} · {APP_NAME}")

        drawer = ui.right_drawer(value=None, bordered=True).props("width=240 breakpoint=800").classes("p-3")
        with drawer:
            view.people_list = PeopleList(people)

        with ui.element("div").classes("room-page"):
            with ui.row().classes("room-head items-center no-wrap w-full"):
                with ui.column().classes("gap-0 min-w-0"):
                    with ui.row().classes("items-center gap-1 no-wrap"):
                        ui.icon("lock" if access.room.is_private else "tag").classes("opacity-70")
                        title = ui.label(access.room.name).classes("text-lg font-semibold")
                        title.props('role="heading" aria-level="1"')
                    if access.room.topic:
                        ui.label(access.room.topic).classes("room-topic")
                with ui.row().classes("ml-auto items-center gap-1 no-wrap"):
                    if access.me is not None and access.me.role is Role.OWNER:
                        room_of_page = access.room.id
                        ui.button(
                            "Settings", icon="tune", on_click=lambda: open_room_settings(services, tab, room_of_page)
                        ).props("flat no-caps")
                    ui.button("People", icon="group", on_click=drawer.toggle).props("flat no-caps")
            view.show(payloads, has_older=history.has_older)
            _composer(services, view)


def _composer(services: Services, view: RoomView) -> None:
    room_id = view.access.room.id
    with ui.element("div").classes("composer w-full"):
        if view.access.can_join:
            with ui.row().classes("items-center gap-3"):
                ui.label("You are viewing a public room.").classes("opacity-80")

                async def join() -> None:
                    try:
                        await services.rooms.join(await view.tab.current(), room_id)
                    except DomainError as exc:
                        ui.notify(exc.message, type="warning")
                        return
                    ui.navigate.reload()

                ui.button("Join room", on_click=join).props("unelevated")
            return

        in_order = asyncio.Lock()  # one tab's messages are saved in the order they were sent

        def send(text: str) -> None:
            # Synchronous on purpose: messages are taken in the order the browser's events arrive.
            try:
                services.chat.validate_body(text)
            except ValidationError as exc:
                composer.show_error(exc.message, text)
                return
            composer.accepted()
            background_tasks.create(post(text), name="post message")

        async def post(text: str) -> None:
            async with in_order:
                try:
                    await services.chat.post_message(await view.tab.current(), room_id, text)
                except DomainError as exc:  # including a session that ended: the draft stays
                    composer.restore(text, exc.message)
                except Exception:
                    log.exception("posting a message failed")
                    composer.restore(text, "Your message could not be sent. It is back in the box; please try again.")

        composer = Composer(max_chars=services.chat.max_message_chars, on_send=send)

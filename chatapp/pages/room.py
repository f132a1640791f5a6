"""The room page: history, live messages, the composer and the participants panel."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import Client, background_tasks, ui

from chatapp.domain.ai import RunningReply
from chatapp.domain.errors import DomainError, NotAuthenticated, NotFound, ValidationError
from chatapp.domain.limits import RateLimited
from chatapp.domain.models import Participant, Room, RoomAccess
from chatapp.domain.services import Services
from chatapp.pages.composer import Composer, Outgoing
from chatapp.pages.message_list import MessageList, Payload, payloads_of
from chatapp.pages.people_list import PeopleList
from chatapp.pages.room_feed import MAX_BACKLOG, RoomFeed, RoomFeeds
from chatapp.pages.room_invites import open_invites
from chatapp.pages.room_settings import open_room_settings
from chatapp.pages.session import TabSession, request_actor, sign_in_url
from chatapp.pages.theme import APP_NAME, header

log = logging.getLogger(__name__)
# A tab that comes back asks for the edits and deletions made since it went away, from this much
# earlier: the clocks of several server processes differ a little, and a change is stamped before it
# is published. Changes it already has come again harmlessly.
CHANGES_MARGIN = timedelta(seconds=5)
# A message the server failed to save (the database away) is sent again by its tab after this long.
RETRY_AFTER_ERROR_S = 3.0


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
        self.feed: RoomFeed | None = None  # the room's feed in this process, once the tab is in it
        self.people_list: PeopleList | None = None
        self.ai_name = ai_name
        self.on_left: list[Callable[[], None]] = []  # stops the tab's live feeds when it leaves the room
        self.opened_at = datetime.now(UTC)  # before its history is read: it has every change up to here
        self.caught_up_once = False
        self._catch_up_lock = asyncio.Lock()
        self._catch_up_waiting = False
        self.head_actions: ui.row | None = None  # the header's buttons
        self.head_title: ui.column | None = None  # the room's name and topic
        self.title: ui.label | None = None
        self.topic: ui.label | None = None  # made when the room has a topic
        self.invite_button: ui.button | None = None  # made for those who may invite, while they may
        self.settings_button: ui.button | None = None  # made for owners, while they are

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
        if self.feed is not None:
            self.feed.received(self.client_id, seq)

    def resync(self) -> None:
        """The room's broadcasts left this tab out while it was behind: it asks for what it missed."""
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

    async def remove_participant(self, participant_id: int) -> None:
        """The Remove button in the people list (owners and moderators)."""

        async def remove(actor) -> None:
            removal = await self.services.rooms.remove_participant(actor, self.access.room.id, participant_id)
            note = f"{removal.name} was removed."
            if removal.link_kept_for:
                others = "1 other person" if removal.link_kept_for == 1 else f"{removal.link_kept_for} others"
                note += (
                    f" The invite link they came in by still works ({others} joined by it): revoke it"
                    " under Invite if they should not come back as a new guest."
                )
            with self.client:
                ui.notify(note, type="positive", multi_line=True, timeout=10000 if removal.link_kept_for else 5000)

        await self._act(remove)

    async def show_removed(self) -> None:
        """Show the owners and moderators who was removed from the room."""

        async def load(actor) -> None:
            removed = await self.services.rooms.removed_participants(actor, self.access.room.id)
            if self.people_list is not None:
                self.people_list.show_removed(removed)

        await self._act(load)

    async def readmit(self, participant_id: int) -> None:
        """The Let back in button of a removed person."""

        async def let_in(actor) -> None:
            back = await self.services.rooms.readmit(actor, self.access.room.id, participant_id)
            with self.client:
                ui.notify(f"{back.display_name} is back in the room.", type="positive")

        await self._act(let_in)
        await self.show_removed()  # the list as it is now, whether that worked or not

    async def set_role(self, participant_id: int, role: str) -> None:
        """The role menu in the people list (owners)."""

        async def change(actor) -> None:
            changed = await self.services.rooms.set_role(actor, self.access.room.id, participant_id, role)
            with self.client:
                article = "an" if changed.role.value == "owner" else "a"
                ui.notify(f"{changed.display_name} is now {article} {changed.role.value}.", type="positive")

        await self._act(change)

    async def _act(self, action) -> None:
        try:
            await action(await self.tab.current())
        except DomainError as exc:
            with self.client:
                ui.notify(exc.message, type="warning")

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
            me=self.access.me.id if self.access.me else 0,
            can_moderate=self.access.can_moderate,
            on_delete=self.delete_message,
            synced_at=self.opened_at,
            on_received=self.received,
            ack_every=max(1, self.feed.max_backlog // 4) if self.feed else 50,
        )
        self.pending.clear()
        self.ready = True

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
        if self.feed is not None:
            self.feed.caught_up(self.client_id)  # from here on it gets the broadcasts; before, the database
        try:
            actor = await self.tab.current()
            since = changes_from(seen_until, opened_at=self.opened_at, now=started)
            missed = await self.services.chat.catch_up(actor, room_id, after_id, since)
            if missed is not None:
                by_id = {m.id: m for m in [*missed.new, *missed.edited]}  # one copy of a new message edited since
                payloads = await payloads_of(sorted(by_id.values(), key=lambda m: m.id))
                self.messages.catch_up(payloads, missed.deleted_ids, synced_at=started)
            else:  # too much missed: start from the newest page
                page = await self.services.chat.history(actor, room_id)
                self.messages.reset(await payloads_of(page.messages), has_older=page.has_older, synced_at=started)
            self.messages.run_method("syncAi", _running_view(self.services.ai.running(room_id)))
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

    async def stop_ai(self) -> None:
        """The Stop button of a running AI reply."""
        await self._act(lambda actor: self.services.ai.stop(actor, self.access.room.id))

    async def regenerate_ai(self) -> None:
        """The Regenerate button of the AI's latest reply."""
        await self._act(lambda actor: self.services.ai.regenerate(actor, self.access.room.id))

    async def load_people(self) -> list[Participant] | None:
        """The room's participants as this tab's user may see them (None if they no longer may)."""
        try:
            return await self.services.rooms.participants(await self.tab.current(), self.access.room.id)
        except DomainError:
            return None

    async def load_room(self) -> Room | None:
        """The room as this tab's person may see it now (None if they no longer may)."""
        try:
            return (await self.services.rooms.access(await self.tab.current(), self.access.room.id)).room
        except DomainError:
            return None

    def show_room(self, room: Room) -> None:
        """The room's settings changed (its name or topic, whether members may invite): follow them."""
        if self.client.is_deleted:
            return
        self.access = RoomAccess(room=room, me=self.access.me)
        self.show_role_controls()
        if self.title is not None and self.title.text != room.name:
            self.title.set_text(room.name)
            with self.client:
                ui.page_title(f"{room.name} · {APP_NAME}")
        self.show_topic(room.topic)

    def show_topic(self, topic: str) -> None:
        """The topic line under the room's name (none for a room without a topic)."""
        if self.topic is not None and not topic:
            self.topic.delete()
            self.topic = None
        elif self.topic is not None:
            self.topic.set_text(topic)
        elif topic and self.head_title is not None:
            with self.head_title:
                self.topic = ui.label(topic).classes("room-topic")

    def show_people(self, people: list[Participant]) -> None:
        """Show a new list of participants (and follow a change of this tab's own role)."""
        if self.client.is_deleted:
            return
        if self.people_list is not None:
            self.people_list.show(people)
        me = self.access.me
        mine = next((p for p in people if me is not None and p.id == me.id), None)
        if mine is not None and mine.role is not me.role:
            self.access = RoomAccess(room=self.access.room, me=mine)
            if self.messages is not None:
                self.messages.run_method("setCanModerate", mine.can_moderate)
            self.show_role_controls()
        if self.people_list is not None and self.people_list.showing_removed:
            if self.access.can_moderate:  # the removed people may have changed too
                background_tasks.create(self.show_removed(), name="refresh removed people")
            else:
                self.people_list.hide_removed()

    def show_role_controls(self) -> None:
        """Give the header Invite and Settings buttons while this person's role allows them (the domain
        checks again on every use). Made only when allowed: most viewers never get them, and every
        element costs memory in every open tab."""
        room_id = self.access.room.id
        self.invite_button = self._control(
            self.invite_button,
            allowed=self.access.can_invite,
            index=0,
            make=lambda: ui.button(
                "Invite", icon="person_add", on_click=lambda: open_invites(self.services, self.tab, room_id)
            ),
        )
        self.settings_button = self._control(
            self.settings_button,
            allowed=self.access.is_owner,
            index=0 if self.invite_button is None else 1,
            make=lambda: ui.button(
                "Settings", icon="tune", on_click=lambda: open_room_settings(self.services, self.tab, room_id)
            ),
        )

    def _control(
        self, button: ui.button | None, *, allowed: bool, index: int, make: Callable[[], ui.button]
    ) -> ui.button | None:
        """The header button as the role allows: deleted when no longer allowed, made (at `index`,
        before People) when newly allowed."""
        if button is not None and not allowed:
            button.delete()
            return None
        if button is None and allowed and self.head_actions is not None:
            with self.head_actions:
                button = make().props("flat no-caps")
            button.move(target_index=index)
        return button

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


def changes_from(seen_until: datetime | None, *, opened_at: datetime, now: datetime) -> datetime:
    """From when a reconnecting tab needs the edits and deletions: the server time of the latest news
    its browser had (it has every change before that), kept between the page's opening (everything
    before is in the page) and now, less CHANGES_MARGIN."""
    return min(max(seen_until or opened_at, opened_at), now) - CHANGES_MARGIN


def _running_view(running: RunningReply | None) -> dict[str, object] | None:
    """A reply in progress as a page opened mid-reply starts from it."""
    if running is None:
        return None
    replaces = running.replaces.id if running.replaces else None
    return {"reply_id": running.reply_id, "text": running.text, "replaces": replaces}


def register_room(services: Services, *, ai_name: str = "Assistant", max_backlog: int = MAX_BACKLOG) -> None:
    """Register /rooms/{room_id}; a tab `max_backlog` broadcasts behind is left out of the room's
    broadcasts until it catches up."""
    feeds = RoomFeeds(max_backlog=max_backlog)

    @ui.page("/rooms/{room_id}", title=APP_NAME)
    async def room_page(request: Request, room_id: str):
        actor, token = await request_actor(services.accounts, request)
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
        view.feed = feed
        client.on_delete(leave_feed)
        tab.on_leave(leave_feed)  # a revoked session stops receiving at once, whatever its browser does
        view.on_left.append(leave_feed)  # so does a tab whose person was removed from the room
        try:  # access can end while the page is built (removed, left in another tab)
            stop_watching = await services.live.watch(actor, access.room.id, feed)
            client.on_delete(stop_watching)
            tab.on_leave(stop_watching)
            view.on_left.append(stop_watching)
            tab.watch_revocations(services.session_watch.watch)
            history = await services.chat.history(actor, access.room.id)
            payloads = await payloads_of(history.messages)
            people = await services.rooms.participants(actor, access.room.id)
        except NotFound:
            leave_feed()
            not_found_page()
            return None
        ui.page_title(f"{access.room.name} · {APP_NAME}")

        drawer = ui.right_drawer(value=None, bordered=True).props("width=240 breakpoint=800").classes("p-3")
        with drawer:
            view.people_list = PeopleList(
                people,
                me=access.me,
                on_remove=view.remove_participant,
                on_set_role=view.set_role,
                on_show_removed=view.show_removed,
                on_readmit=view.readmit,
            )
            if access.me is not None:
                _leave_button(services, view)

        with ui.element("div").classes("room-page"):
            with ui.row().classes("room-head items-center no-wrap w-full"):
                with ui.column().classes("gap-0 min-w-0") as view.head_title:
                    with ui.row().classes("items-center gap-1 no-wrap min-w-0"):
                        ui.icon("lock" if access.room.is_private else "tag").classes("opacity-70")
                        view.title = ui.label(access.room.name).classes("text-lg font-semibold room-title")
                        view.title.props('role="heading" aria-level="1"')
                    view.show_topic(access.room.topic)
                with ui.row().classes("ml-auto items-center gap-1 no-wrap") as view.head_actions:
                    ui.button("People", icon="group", on_click=drawer.toggle).props("flat no-caps")
                view.show_role_controls()
            view.show(payloads, has_older=history.has_older)
            _composer(services, view)


def _leave_button(services: Services, view: RoomView) -> None:
    async def leave() -> None:
        if not button.props.get("data-armed"):  # two clicks: the first asks
            button.props("data-armed")
            button.text = "Leave? Click again"
            return
        try:
            await services.rooms.leave(await view.tab.current(), view.access.room.id)
        except DomainError as exc:
            button.props(remove="data-armed")
            button.text = "Leave room"
            ui.notify(exc.message, type="warning")
            return
        ui.navigate.to("/?left=you")

    button = ui.button("Leave room", icon="logout", on_click=leave).props("flat no-caps color=negative")
    button.classes("mt-4 leave-room")


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

        def send(outgoing: Outgoing) -> None:
            # Synchronous on purpose: messages are taken in the order the browser's events arrive.
            try:
                services.chat.validate_body(outgoing.text)
            except ValidationError as exc:
                composer.reject(outgoing, exc.message)
                return
            composer.accepted()
            background_tasks.create(post(outgoing), name="post message")

        async def post(outgoing: Outgoing) -> None:
            async with in_order:
                try:
                    actor = await view.tab.current()
                    await services.chat.post_message(
                        actor, room_id, outgoing.text, client_message_id=outgoing.client_message_id
                    )
                except RateLimited as exc:  # the browser keeps it and sends it again when allowed
                    composer.retry(outgoing, exc.message, after_s=exc.retry_after)
                except DomainError as exc:  # including a session that ended: the text goes back in the box
                    composer.reject(outgoing, exc.message)
                except Exception:
                    log.exception("posting a message failed")
                    composer.retry(outgoing, "Your message could not be saved yet.", after_s=RETRY_AFTER_ERROR_S)
                else:
                    composer.confirm(outgoing)

        composer = Composer(
            max_chars=services.chat.max_message_chars, storage_key=_storage_key(view.access), on_send=send
        )


def _storage_key(access: RoomAccess) -> str:
    """Where the browser keeps this person's draft and outbox for the room: the room's creation time
    too, so that a browser's leftovers never reach a new database's room of the same id."""
    room, me = access.room, access.me
    return f"chatapp:room:{room.id}:{int(room.created_at.timestamp())}:p{me.id if me else 0}"

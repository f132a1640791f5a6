"""The room's composer and Leave button: what a tab sends, and how the server answers it."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from nicegui import background_tasks, ui

from chatapp.domain.errors import DomainError, ValidationError
from chatapp.domain.limits import RateLimited
from chatapp.domain.models import RoomAccess
from chatapp.domain.services import Services
from chatapp.pages.composer import Composer, Outgoing
from chatapp.pages.notices import refusals_noticed, show_refusal

if TYPE_CHECKING:
    from chatapp.pages.room_view import RoomView

log = logging.getLogger(__name__)
# A message the server failed to save (the database away) is sent again by its tab after this long.
RETRY_AFTER_ERROR_S = 3.0


def leave_button(services: Services, view: RoomView) -> None:
    """The people panel's Leave room button: two clicks, the first asks."""

    async def leave() -> None:
        if not button.props.get("data-armed"):  # two clicks: the first asks
            button.props("data-armed")
            button.text = "Leave? Click again"
            return
        try:
            await services.membership.leave(await view.tab.current(), view.access.room.id)
        except DomainError as exc:
            button.props(remove="data-armed")
            button.text = "Leave room"
            show_refusal(exc)
            return
        ui.navigate.to("/?left=you")

    button = ui.button("Leave room", icon="logout", on_click=leave).props("flat no-caps color=negative")
    button.classes("mt-4 leave-room")


def room_composer(services: Services, view: RoomView) -> None:
    """The composer (or, for someone viewing a public room, its Join button); each message is saved in
    the order the tab sent it, and confirmed to the browser only once it is."""
    room_id = view.access.room.id
    with ui.element("div").classes("composer w-full"):
        if view.access.can_join:
            _join_button(services, view, room_id)
            return
        _composer(services, view, room_id)


def _join_button(services: Services, view: RoomView, room_id: int) -> None:
    with ui.row().classes("items-center gap-3"):
        ui.label("You are viewing a public room.").classes("opacity-80")

        async def join() -> None:
            with refusals_noticed() as refused:
                await services.membership.join(await view.tab.current(), room_id)
            if refused:
                return
            ui.navigate.reload()

        ui.button("Join room", on_click=join).props("unelevated")


def _composer(services: Services, view: RoomView, room_id: int) -> None:
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

    composer = Composer(max_chars=services.chat.max_message_chars, storage_key=_storage_key(view.access), on_send=send)


def _storage_key(access: RoomAccess) -> str:
    """Where the browser keeps this person's draft and outbox for the room: the room's creation time
    too, so that a browser's leftovers never reach a new database's room of the same id."""
    room, me = access.room, access.me
    return f"chatapp:room:{room.id}:{int(room.created_at.timestamp())}:p{me.id if me else 0}"

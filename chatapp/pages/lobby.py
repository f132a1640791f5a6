"""The lobby: my rooms by newest activity, public rooms to join, and a form for a new room."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from nicegui import ui

from chatapp.domain.errors import DomainError, ValidationError
from chatapp.domain.models import Room, RoomSummary
from chatapp.domain.services import Services
from chatapp.live.markdown import plain_text
from chatapp.pages.notices import refusals_noticed, show_refusal
from chatapp.pages.session import TabSession, request_actor, sign_in_url
from chatapp.pages.theme import APP_NAME, header

PREVIEW_CHARS = 120


def preview(summary: RoomSummary) -> str:
    """One line of the room's newest message, as plain text."""
    message = summary.last_message
    if message is None:
        return "No messages yet"
    text = plain_text(message.body)
    if len(text) > PREVIEW_CHARS:
        text = text[: PREVIEW_CHARS - 1] + "…"
    return f"{message.author_name}: {text}"


def ago(moment: datetime, now: datetime | None = None) -> str:
    """How long ago, in words ("just now", "5 min ago", "3 h ago", "2 days ago", then the date): the
    same for every reader whatever their time zone."""
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    if seconds < 7 * 86400:
        days = int(seconds // 86400)
        return f"{days} day{'s' if days > 1 else ''} ago"
    return f"{moment:%b} {moment.day}, {moment.year}"


LEFT_NOTICES = {
    "you": "You left the room.",
    "removed": "You were removed from that room.",
    "deleted": "That room was deleted by its owner.",
}


def _room_row(summary: RoomSummary) -> None:
    room = summary.room
    with (
        ui.link(target=f"/rooms/{room.id}").classes("no-underline text-inherit w-full"),
        ui.card().classes("w-full cursor-pointer hover:shadow-md").props("flat bordered"),
    ):
        with ui.row().classes("items-center gap-2 w-full no-wrap"):
            ui.icon("lock" if room.is_private else "tag").classes("opacity-70")
            ui.label(room.name).classes("font-semibold")
            if summary.last_message:
                when = summary.last_message.created_at
                ui.label(ago(when)).classes("ml-auto text-xs opacity-60").props(f'title="{when:%Y-%m-%d %H:%M} UTC"')
        ui.label(preview(summary)).classes("lobby-preview w-full")


def register_lobby(services: Services) -> None:
    """Register the lobby page at /."""

    @ui.page("/", title=APP_NAME)
    async def lobby_page(request: Request, left: str = ""):
        # A thin closure: NiceGUI and FastAPI read the page's parameters (the query's `left`).
        return await _lobby_page(services, request, left)


async def _lobby_page(services: Services, request: Request, left: str) -> Response | None:
    actor, token = await request_actor(services.accounts, request)
    if actor is None:
        return RedirectResponse(sign_in_url("/"), status_code=303)
    lobby = await services.rooms.list_rooms(actor)
    tab = TabSession(services.accounts, token, actor, ui.context.client)
    tab.watch_revocations(services.session_watch.watch)
    header(actor)
    with ui.column().classes("page-narrow gap-6"):
        if left:
            notice = LEFT_NOTICES.get(left, "You are no longer in that room.")
            ui.label(notice).classes("lobby-notice").props('role="status"')
        _my_rooms(lobby.my_rooms, guest=actor.is_guest)
        if lobby.public_rooms:
            _public_rooms(services, tab, lobby.public_rooms)
        if actor.is_guest:
            _guest_card()
        else:
            await _new_room_form(services, tab)
    return None


def _my_rooms(my_rooms: list[RoomSummary], *, guest: bool) -> None:
    with ui.column().classes("w-full gap-2"):
        ui.label("Your rooms").classes("text-xl font-semibold")
        if not my_rooms:
            empty = (
                "You are not in any room now. Follow an invite link to join one."
                if guest
                else "You are not in any room yet. Create one below or join a public room."
            )
            ui.label(empty).classes("opacity-70")
        for summary in my_rooms:
            _room_row(summary)


def _public_rooms(services: Services, tab: TabSession, rooms: list[Room]) -> None:
    with ui.column().classes("w-full gap-2"):
        ui.label("Public rooms you can join").classes("text-xl font-semibold")
        for room in rooms:
            with (
                ui.card().props("flat bordered").classes("w-full"),
                ui.row().classes("items-center w-full no-wrap"),
            ):
                with ui.column().classes("gap-0"):
                    ui.label(room.name).classes("font-semibold")
                    if room.topic:
                        ui.label(room.topic).classes("text-sm opacity-70")
                ui.button("Join", on_click=lambda r=room: _join(services, tab, r)).props("outline").classes("ml-auto")


async def _join(services: Services, tab: TabSession, room: Room) -> None:
    with refusals_noticed() as refused:
        await services.membership.join(await tab.current(), room.id)
    if refused:
        return
    ui.navigate.to(f"/rooms/{room.id}")


def _guest_card() -> None:
    with ui.card().props("flat bordered").classes("w-full"):
        ui.label("You are a guest").classes("text-lg font-semibold")
        ui.label("Create an account to start your own rooms; your messages come with you.")
        ui.link("Create an account", "/sign-up")


async def _new_room_form(services: Services, tab: TabSession) -> None:
    with ui.card().props("flat bordered").classes("w-full"):
        ui.label("Create a room").classes("text-xl font-semibold")
        name = ui.input("Room name").props("outlined stack-label").classes("w-full")
        topic = ui.input("Topic (optional)").props("outlined stack-label").classes("w-full")
        private = ui.switch("Private: hidden from everyone who is not in it")

        async def create() -> None:
            if create_button.props.get("loading"):
                return  # a double click must not make two rooms
            name.error = topic.error = None
            create_button.props("loading")
            try:
                room = await services.rooms.create_room(
                    await tab.current(), name=name.value, topic=topic.value, private=private.value
                )
            except ValidationError as exc:
                name.error = exc.fields.get("name")
                topic.error = exc.fields.get("topic")
                return
            except DomainError as exc:
                show_refusal(exc)
                return
            finally:
                create_button.props(remove="loading")
            ui.navigate.to(f"/rooms/{room.id}")

        name.on("keydown.enter", create)
        create_button = ui.button("Create room", icon="add", on_click=create).props("unelevated")

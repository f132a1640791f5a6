"""The room page: history, live messages, the composer and the participants panel.

The page is built here; the tab's view of the room (what the room's hub calls) is room_view.py, its
header room_header.py, the people panel's actions room_people.py, catch-up room_catch_up.py and the
composer room_composer.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import ui

from chatapp.domain.ai_models import ReplyInProgress
from chatapp.domain.errors import NotFound
from chatapp.domain.models import Actor, Participant
from chatapp.domain.services import Services
from chatapp.live.flow import MAX_BACKLOG
from chatapp.live.hub import RoomHub
from chatapp.live.payloads import Payload, payloads_of
from chatapp.live.presence import RoomPresence, presence_key, presence_meta
from chatapp.pages.people_list import PeopleList
from chatapp.pages.room_composer import leave_button, room_composer
from chatapp.pages.room_feed import tab_hubs
from chatapp.pages.room_view import RoomView
from chatapp.pages.session import TabSession, request_actor, sign_in_url
from chatapp.pages.theme import APP_NAME, header


def not_found_page() -> None:
    """A 404 that says nothing about whether a private room exists."""
    ui.context.client.status_code = 404
    with ui.column().classes("page-narrow"):
        ui.label("Room not found").classes("text-2xl font-semibold")
        ui.label("It does not exist, or you do not have access to it.").classes("opacity-70")
        ui.link("Back to your rooms", "/")


def register_room(
    services: Services,
    *,
    ai_name: str = "Assistant",
    max_backlog: int = MAX_BACKLOG,
    presence: RoomPresence | None = None,
) -> None:
    """Register /rooms/{room_id}; a tab `max_backlog` broadcasts behind is left out of the room's
    broadcasts until it catches up. An open tab counts in the room's `presence`."""
    hubs = tab_hubs(max_backlog=max_backlog)
    presence = presence or RoomPresence()

    @ui.page("/rooms/{room_id}", title=APP_NAME)
    async def room_page(request: Request, room_id: str):
        actor, token = await request_actor(services.accounts, request)
        if actor is None:
            return RedirectResponse(sign_in_url(request.url.path), status_code=303)
        header(actor)
        try:
            access = await services.rooms.get_room_access(actor, int(room_id))
        except (NotFound, ValueError):
            not_found_page()
            return None
        client = ui.context.client
        tab = TabSession(services.accounts, token, actor, client)
        view = RoomView(services, tab, access, client, ai_name)
        # The tab joins the hub first, so a failed build still leaves through on_delete.
        hub = hubs.hub_for(access.room.id)
        leave_hub = _join_hub(hub, view)
        _count_present(presence, view, actor)
        try:  # access can end while the page is built (removed, left in another tab)
            opening = await _open(services, view, hub, actor)
        except NotFound:
            leave_hub()
            not_found_page()
            return None
        _build(services, view, opening)
        return None


@dataclass(frozen=True, slots=True)
class _Opening:
    """What a room page opens with."""

    history: list[Payload]
    has_older: bool
    people: list[Participant]
    running: ReplyInProgress | None


def _join_hub(hub: RoomHub, view: RoomView) -> Callable[[], None]:
    """Put the tab in its room's hub until it closes, its session is revoked or it leaves the room."""
    leave_hub = hub.add(view)
    view.hub = hub
    view.client.on_delete(leave_hub)
    view.tab.on_leave(leave_hub)  # a revoked session stops receiving at once, whatever its browser does
    view.on_left.append(leave_hub)  # so does a tab whose person was removed from the room
    return leave_hub


def _count_present(presence: RoomPresence, view: RoomView, actor: Actor) -> None:
    """The open tab counts as its person being in the room (for the room socket's presence) until it
    closes, its session is revoked or its person leaves the room."""
    meta = presence_meta(actor, view.access.me, "browser")
    untrack = presence.track(view.access.room.id, presence_key(actor), meta)
    view.client.on_delete(untrack)
    view.tab.on_leave(untrack)
    view.on_left.append(untrack)


async def _open(services: Services, view: RoomView, hub: RoomHub, actor: Actor) -> _Opening:
    """Watch the room, then read its history, people and the AI's reply in progress (subscribed before
    the history is read, so nothing posted in between is missed). NotFound if access ended meanwhile."""
    room_id = view.access.room.id
    stop_watching = await services.live.watch(actor, room_id, hub)
    view.client.on_delete(stop_watching)
    view.tab.on_leave(stop_watching)
    view.on_left.append(stop_watching)
    view.tab.watch_revocations(services.session_watch.watch)
    history = await services.chat.list_messages(actor, room_id)
    payloads = await payloads_of(history.messages)
    people = await services.membership.list_participants(actor, room_id)
    running = await services.ai.get_reply_in_progress(actor, room_id)  # after the history
    return _Opening(payloads, history.has_older, people, running)


def _build(services: Services, view: RoomView, opening: _Opening) -> None:
    """The page's elements: the people drawer, the header, the messages and the composer."""
    access = view.access
    ui.page_title(f"{access.room.name} · {APP_NAME}")
    drawer = ui.right_drawer(value=None, bordered=True).props("width=240 breakpoint=800").classes("p-3")
    with drawer:
        view.people_list = PeopleList(
            opening.people,
            me=access.me,
            on_remove=view.remove_participant,
            on_set_role=view.set_role,
            on_show_removed=view.show_removed,
            on_readmit=view.readmit,
        )
        if access.me is not None:
            leave_button(services, view)
    with ui.element("div").classes("room-page"):
        view.header.build(access, on_people=drawer.toggle)
        view.show(opening.history, has_older=opening.has_older, running=opening.running)
        room_composer(services, view)

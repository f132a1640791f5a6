"""The room's header in one tab: its name, its topic and the buttons the person's role allows."""

from __future__ import annotations

from collections.abc import Callable

from nicegui import Client, ui

from chatapp.domain.models import Room, RoomAccess
from chatapp.domain.services import Services
from chatapp.pages.room_invites import open_invites
from chatapp.pages.room_settings import open_room_settings
from chatapp.pages.session import TabSession
from chatapp.pages.theme import APP_NAME


class RoomHeader:
    """The header's elements; they follow the room's settings and the person's role."""

    def __init__(self, services: Services, tab: TabSession, client: Client) -> None:
        self.services = services
        self.tab = tab
        self.client = client
        self.head_actions: ui.row | None = None  # the header's buttons
        self.head_title: ui.column | None = None  # the room's name and topic
        self.title: ui.label | None = None
        self.topic: ui.label | None = None  # made when the room has a topic
        self.invite_button: ui.button | None = None  # made for those who may invite, while they may
        self.settings_button: ui.button | None = None  # made for owners, while they are

    def build(self, access: RoomAccess, *, on_people: Callable[[], object]) -> None:
        """The name (a heading), the topic, People and the buttons the person's role allows."""
        with ui.row().classes("room-head items-center no-wrap w-full"):
            with ui.column().classes("gap-0 min-w-0") as self.head_title:
                with ui.row().classes("items-center gap-1 no-wrap min-w-0"):
                    ui.icon("lock" if access.room.is_private else "tag").classes("opacity-70")
                    self.title = ui.label(access.room.name).classes("text-lg font-semibold room-title")
                    self.title.props('role="heading" aria-level="1"')
                self.show_topic(access.room.topic)
            with ui.row().classes("ml-auto items-center gap-1 no-wrap") as self.head_actions:
                ui.button("People", icon="group", on_click=on_people).props("flat no-caps")
            self.show_role_controls(access)

    def show_room(self, access: RoomAccess, room: Room) -> None:
        """The room's settings changed (its name or topic, whether members may invite): follow them."""
        self.show_role_controls(access)
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

    def show_role_controls(self, access: RoomAccess) -> None:
        """Give the header Invite and Settings buttons while this person's role allows them (the domain
        checks again on every use). Made only when allowed: most viewers never get them, and every
        element costs memory in every open tab."""
        room_id = access.room.id
        self.invite_button = self._control(
            self.invite_button,
            allowed=access.can_invite,
            index=0,
            make=lambda: ui.button(
                "Invite", icon="person_add", on_click=lambda: open_invites(self.services, self.tab, room_id)
            ),
        )
        self.settings_button = self._control(
            self.settings_button,
            allowed=access.is_owner,
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

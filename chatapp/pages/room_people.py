"""The people panel's actions in a room's tab: remove, let back in, change roles, follow changes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from nicegui import Client, background_tasks, ui

from chatapp.domain.models import Actor, Participant, RoomAccess
from chatapp.domain.services import Services
from chatapp.pages.message_list import MessageList
from chatapp.pages.notices import refusals_noticed
from chatapp.pages.people_list import PeopleList
from chatapp.pages.session import TabSession


class PeopleActions:
    """What the people list's buttons do (the domain decides who may), for RoomView."""

    services: Services
    tab: TabSession
    access: RoomAccess
    client: Client
    people_list: PeopleList | None
    messages: MessageList | None

    def show_role_controls(self) -> None: ...

    async def remove_participant(self, participant_id: int) -> None:
        """The Remove button in the people list (owners and moderators)."""

        async def remove(actor) -> None:
            removal = await self.services.membership.remove_participant(actor, self.access.room.id, participant_id)
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
            removed = await self.services.membership.list_removed_participants(actor, self.access.room.id)
            if self.people_list is not None:
                self.people_list.show_removed(removed)

        await self._act(load)

    async def readmit(self, participant_id: int) -> None:
        """The Let back in button of a removed person."""

        async def let_in(actor) -> None:
            back = await self.services.membership.readmit(actor, self.access.room.id, participant_id)
            with self.client:
                ui.notify(f"{back.display_name} is back in the room.", type="positive")

        await self._act(let_in)
        await self.show_removed()  # the list as it is now, whether that worked or not

    async def set_role(self, participant_id: int, role: str) -> None:
        """The role menu in the people list (owners)."""

        async def change(actor) -> None:
            changed = await self.services.membership.update_role(actor, self.access.room.id, participant_id, role)
            with self.client:
                article = "an" if changed.role.value == "owner" else "a"
                ui.notify(f"{changed.display_name} is now {article} {changed.role.value}.", type="positive")

        await self._act(change)

    async def _act(self, action: Callable[[Actor], Awaitable[Any]]) -> None:
        """Do it as the tab's person; a refusal becomes a notice in this tab."""
        with refusals_noticed(self.client):
            await action(await self.tab.current())

    def show_people(self, people: list[Participant]) -> None:
        """Show a new list of participants (and follow a change of this tab's own role)."""
        if self.client.is_deleted:
            return
        if self.people_list is not None:
            self.people_list.show(people)
        me = self.access.me
        mine = next((p for p in people if me is not None and p.id == me.id), None)
        if me is not None and mine is not None and mine.role is not me.role:
            self.access = RoomAccess(room=self.access.room, me=mine)
            if self.messages is not None:
                self.messages.run_method("setCanModerate", mine.can_moderate)
            self.show_role_controls()
        if self.people_list is not None and self.people_list.showing_removed:
            if self.access.can_moderate:  # the removed people may have changed too
                background_tasks.create(self.show_removed(), name="refresh removed people")
            else:
                self.people_list.hide_removed()

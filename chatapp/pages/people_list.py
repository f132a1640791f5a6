"""The participants panel: one element holding the people as data (a room of 500 costs one element)."""

from __future__ import annotations

from nicegui import ui

from chatapp.domain.models import Participant

ROLE_LABEL = {"owner": "Owner", "moderator": "Moderator", "member": "Member", "guest": "Guest"}


def _entry(person: Participant) -> dict[str, object]:
    role = getattr(person.role, "value", person.role)
    kind = getattr(person.kind, "value", person.kind)
    label = "AI" if kind == "ai" else ROLE_LABEL.get(role, str(role))
    return {"id": person.id, "name": person.display_name, "role": label, "kind": kind}


class PeopleList(ui.element, component="people_list.js"):
    """Who is in the room, with their role; the browser renders the list."""

    def __init__(self, people: list[Participant]) -> None:
        super().__init__()
        self.show(people)

    def show(self, people: list[Participant]) -> None:
        """Replace the list (participants change rarely and the list is small data)."""
        self._props["people"] = [_entry(p) for p in people]
        self.update()

    def _displayed_contents(self, *, only_visible: bool) -> list:
        people = self._props["people"]
        return [f"People ({len(people)})", *(f"{p['name']} ({p['role']})" for p in people)]

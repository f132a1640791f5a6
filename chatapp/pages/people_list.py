"""The participants panel: one element holding the people as data (a room of 500 costs one element)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from nicegui import ui

from chatapp.domain.models import Participant

ROLE_LABEL = {"owner": "Owner", "moderator": "Moderator", "member": "Member", "guest": "Guest"}
KIND_LABEL = {
    "ai": "AI",
    "guest": "Guest, no account",
    "bot": "Bot",
    "webhook": "Webhook",
}  # what messages mark with a badge


def _entry(person: Participant) -> dict[str, object]:
    role = getattr(person.role, "value", person.role)
    kind = getattr(person.kind, "value", person.kind)
    label = KIND_LABEL.get(kind) or ROLE_LABEL.get(role, str(role))
    return {"id": person.id, "name": person.display_name, "role": label, "role_value": role, "kind": kind}


class PeopleList(ui.element, component="people_list.js"):
    """Who is in the room, with their role; the browser renders the list. Owners get a role menu and
    owners and moderators a Remove button, and on request the removed people with a Let back in
    button (the domain checks every change again)."""

    def __init__(
        self,
        people: list[Participant],
        *,
        me: Participant | None = None,
        on_remove: Callable[[int], Awaitable[None]] | None = None,
        on_set_role: Callable[[int, str], Awaitable[None]] | None = None,
        on_show_removed: Callable[[], Awaitable[None]] | None = None,
        on_readmit: Callable[[int], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__()
        self._props["me"] = me.id if me else 0
        self._props["my-role"] = me.role.value if me else ""
        self._props["removed"] = None  # owners and moderators: loaded when they ask to see it
        if on_remove is not None:
            self.on("remove", lambda e: on_remove(e.args) if isinstance(e.args, int) else None)
        if on_set_role is not None:
            self.on("set-role", lambda e: _set_role(on_set_role, e.args))
        if on_show_removed is not None:
            self.on("show-removed", lambda _: on_show_removed())
        if on_readmit is not None:
            self.on("readmit", lambda e: on_readmit(e.args) if isinstance(e.args, int) else None)
        self.show(people)

    def show_removed(self, people: list[Participant]) -> None:
        """The people removed from the room, each with a Let back in button."""
        self._props["removed"] = [_entry(p) for p in people]
        self.update()

    @property
    def showing_removed(self) -> bool:
        """Whether the removed people are on screen (they are loaded only on request)."""
        return self._props["removed"] is not None

    def hide_removed(self) -> None:
        """No longer a moderator: the removed people go from the screen."""
        self._props["removed"] = None
        self.update()

    def show(self, people: list[Participant]) -> None:
        """Replace the list (participants change rarely and the list is small data)."""
        self._props["people"] = [_entry(p) for p in people]
        mine = next((p for p in people if p.id == self._props["me"]), None)
        if mine is not None:  # the viewer's own role may have changed
            self._props["my-role"] = mine.role.value
        self.update()

    def _displayed_contents(self, *, only_visible: bool) -> list:
        people, removed = self._props["people"], self._props["removed"]
        shown = [f"People ({len(people)})", *(f"{p['name']} ({p['role']})" for p in people)]
        if removed is not None:
            shown += [f"Removed ({len(removed)})", *(f"{p['name']} (removed)" for p in removed)]
        return shown


def _set_role(handler: Callable[[int, str], Awaitable[None]], args: object) -> Awaitable[None] | None:
    if isinstance(args, dict) and isinstance(args.get("id"), int) and isinstance(args.get("role"), str):
        return handler(args["id"], args["role"])
    return None

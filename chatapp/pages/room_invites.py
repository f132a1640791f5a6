"""The room's invite dialog: create a link (shown once), list the links, revoke them."""

from __future__ import annotations

from datetime import UTC, datetime

from nicegui import ui

from chatapp.domain.errors import DomainError
from chatapp.domain.models import Invite
from chatapp.domain.services import Services
from chatapp.pages.notices import refusals_noticed
from chatapp.pages.session import TabSession

EXPIRY_CHOICES = {1: "1 day", 7: "7 days", 30: "30 days", 0: "Never"}
USES_CHOICES = {0: "Unlimited", 1: "1 person", 5: "5 people", 10: "10 people", 25: "25 people", 100: "100 people"}


async def open_invites(services: Services, tab: TabSession, room_id: int) -> None:
    """Show the invite dialog: a form for a new link, then the room's links with their state."""
    with refusals_noticed() as refused:
        invites = await services.invites.list_invites(await tab.current(), room_id)
    if refused:
        return
    base_url = site_url()
    with ui.dialog() as dialog, ui.card().classes("room-settings"):
        ui.label("Invite people").classes("text-lg font-semibold").props('role="heading" aria-level="2"')
        ui.label("Anyone with a link can join this room, as a guest or with their account.").classes(
            "text-sm opacity-70"
        )
        _InviteLinks(services, tab, room_id, base_url).show(invites)
        with ui.row().classes("w-full justify-end"):
            ui.button("Close", on_click=dialog.close).props("flat no-caps")
    dialog.on("hide", dialog.delete)
    dialog.open()


class _InviteLinks:
    """The dialog's form for a new link, the link just made, and the room's links (refreshed after
    each change)."""

    def __init__(self, services: Services, tab: TabSession, room_id: int, base_url: str) -> None:
        self._services, self._tab, self._room_id, self._base_url = services, tab, room_id, base_url
        default_days = int(services.invites.policy.default_expiry_days)
        with ui.row().classes("w-full gap-2 no-wrap"):
            self._expiry = ui.select(
                {default_days: f"{default_days} days", **EXPIRY_CHOICES}, value=default_days, label="Link expires after"
            ).classes("grow")
            self._uses = ui.select(USES_CHOICES, value=0, label="Can be used by").classes("grow")
        ui.button("Create link", icon="link").props("unelevated no-caps").on_click(self._create)
        self._created = ui.column().classes("w-full gap-1")
        self._listing = ui.column().classes("w-full gap-1")

    def show(self, invites: list[Invite]) -> None:
        """List the room's links (as read when the dialog opened)."""
        _show_links(self._listing, invites, self._revoke)

    async def _create(self) -> None:
        with refusals_noticed() as refused:
            new = await self._services.invites.create_invite(
                await self._tab.current(),
                self._room_id,
                expires_in_days=float(self._expiry.value),
                max_uses=self._uses.value or None,
            )
        if refused:
            return
        link = f"{self._base_url}/join/{new.token}"
        self._created.clear()
        with self._created:
            ui.label("Copy the link now: it is shown only once.").classes("text-sm font-medium")
            with ui.row().classes("w-full no-wrap items-center gap-2"):
                ui.input("Invite link", value=link).props("readonly outlined dense").classes("grow")
                ui.button("Copy", icon="content_copy", on_click=lambda: _copy(link)).props("flat no-caps")
        await self._refresh()

    async def _revoke(self, invite: Invite) -> None:
        with refusals_noticed() as refused:
            await self._services.invites.revoke_invite(await self._tab.current(), self._room_id, invite.id)
        if refused:
            return
        ui.notify("Link revoked.")
        await self._refresh()

    async def _refresh(self) -> None:
        try:
            current = await self._services.invites.list_invites(await self._tab.current(), self._room_id)
        except DomainError:
            return
        _show_links(self._listing, current, self._revoke)


def _show_links(listing: ui.column, invites: list[Invite], revoke) -> None:
    now = datetime.now(UTC)
    listing.clear()
    with listing:
        ui.label("Links of this room").classes("text-base font-semibold mt-2").props('role="heading" aria-level="3"')
        if not invites:
            ui.label("No links yet.").classes("text-sm opacity-70")
        for invite in invites:
            status = invite.status(now)
            with ui.row().classes("w-full items-center no-wrap gap-2 invite-row"):
                with ui.column().classes("gap-0 grow min-w-0"):
                    ui.label(f"By {invite.created_by_name} · {_when(invite.created_at)}").classes("text-sm")
                    ui.label(_details(invite, status)).classes("text-xs opacity-70")
                if status == "active":
                    ui.button("Revoke", on_click=lambda i=invite: revoke(i)).props("flat dense no-caps color=negative")


def _details(invite: Invite, status: str) -> str:
    if invite.max_uses:
        uses = f"used {invite.uses} of {invite.max_uses}"
    else:
        uses = "not used yet" if invite.uses == 0 else f"used {invite.uses} time{'s' if invite.uses > 1 else ''}"
    expires = f"expires {_when(invite.expires_at)}" if invite.expires_at else "never expires"
    return f"{status.capitalize()} · {uses} · {expires}"


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else ""


def site_url() -> str:
    """The address this tab reached the site by (for links shown to copy)."""
    request = ui.context.client.request
    return str(request.base_url).rstrip("/") if request else ""


def _copy(text: str) -> None:
    ui.clipboard.write(text)
    ui.notify("Link copied.")

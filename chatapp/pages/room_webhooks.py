"""The room settings' webhooks (owners): incoming webhooks (create one, its URL shown once; revoke), and
which messages call each bot of the room that has an outgoing webhook."""

from __future__ import annotations

from datetime import datetime

from nicegui import ui

from chatapp.domain.errors import DomainError
from chatapp.domain.models import BotCalls, IncomingWebhook, Participant, ParticipantKind
from chatapp.domain.services import Services
from chatapp.domain.webhooks import webhook_url_path
from chatapp.pages.notices import refusals_noticed
from chatapp.pages.session import TabSession

BOT_CALLS_LABELS = {BotCalls.MENTION.value: "When mentioned", BotCalls.EVERY.value: "Every message"}


def subheading(text: str) -> None:
    ui.label(text).classes("text-base font-semibold mt-2").props('role="heading" aria-level="3"')


class RoomWebhooks:
    """The incoming webhooks of a room and its bots' calls, refreshed after each change."""

    def __init__(self, services: Services, tab: TabSession, room_id: int, base_url: str) -> None:
        self._services, self._tab, self._room_id, self._base_url = services, tab, room_id, base_url
        subheading("Incoming webhooks")
        ui.label("A secret URL to which a script or service posts messages into this room.").classes(
            "text-sm opacity-70"
        )
        with ui.row().classes("w-full no-wrap items-center gap-2"):
            self._name = ui.input("Webhook name", placeholder="e.g. CI").props("outlined dense").classes("grow")
            ui.button("Create webhook", icon="webhook").props("unelevated no-caps").on_click(self._create)
        self._created = ui.column().classes("w-full gap-1")
        self._listing = ui.column().classes("w-full gap-1")
        self._bots = ui.column().classes("w-full gap-1")

    async def refresh(self) -> None:
        """Read the room's webhooks and bots again and show them."""
        try:
            actor = await self._tab.current()
            webhooks = await self._services.webhooks.list_webhooks(actor, self._room_id)
            people = await self._services.membership.list_participants(actor, self._room_id)
        except DomainError:
            return
        self._show_webhooks(webhooks)
        self._show_bots([p for p in people if p.kind is ParticipantKind.BOT])

    async def _create(self) -> None:
        with refusals_noticed() as refused:
            new = await self._services.webhooks.create_webhook(
                await self._tab.current(), self._room_id, self._name.value or ""
            )
        if refused:
            return
        self._name.value = ""
        url = self._base_url + webhook_url_path(new.token)
        example = f"curl -X POST -H 'Content-Type: application/json' -d '{{\"text\": \"Hello\"}}' {url}"
        self._created.clear()
        with self._created, ui.column().classes("w-full gap-1").props('role="status"'):
            ui.label("Copy the URL now: it is shown only once.").classes("text-sm font-medium")
            with ui.row().classes("w-full no-wrap items-center gap-2"):
                ui.input("Webhook URL", value=url).props("readonly outlined dense").classes("grow")
                ui.button("Copy", icon="content_copy", on_click=lambda: _copy(url, "URL")).props("flat no-caps")
            ui.label("Post to it like this (username is optional):").classes("text-xs opacity-70")
            ui.code(example, language="bash").classes("w-full text-xs")
        await self.refresh()

    async def _revoke(self, webhook: IncomingWebhook) -> None:
        with refusals_noticed() as refused:
            await self._services.webhooks.revoke_webhook(await self._tab.current(), self._room_id, webhook.id)
        if refused:
            return
        ui.notify(f"Webhook {webhook.name!r} revoked.")
        await self.refresh()

    async def _set_calls(self, bot: Participant, calls: str) -> None:
        with refusals_noticed():
            await self._services.bot_hooks.set_bot_calls(await self._tab.current(), self._room_id, bot.id, calls)
            ui.notify(f"{bot.display_name}: {BOT_CALLS_LABELS[calls].lower()}.")

    def _show_webhooks(self, webhooks: list[IncomingWebhook]) -> None:
        self._listing.clear()
        with self._listing:
            if not webhooks:
                ui.label("No webhooks yet.").classes("text-sm opacity-70")
            for webhook in webhooks:
                with ui.row().classes("w-full items-center no-wrap gap-2 webhook-row"):
                    with ui.column().classes("gap-0 grow min-w-0"):
                        ui.label(webhook.name).classes("text-sm")
                        ui.label(_webhook_details(webhook)).classes("text-xs opacity-70")
                    if webhook.revoked_at is None:
                        revoke = ui.button("Revoke", on_click=lambda w=webhook: self._revoke(w))
                        revoke.props(f'flat dense no-caps color=negative aria-label="Revoke webhook {webhook.name}"')

    def _show_bots(self, bots: list[Participant]) -> None:
        self._bots.clear()
        if not bots:
            return
        with self._bots:
            subheading("Bots in this room")
            ui.label("Which messages call a bot that has an outgoing webhook (its owner sets the URL).").classes(
                "text-sm opacity-70"
            )
            for bot in bots:
                ui.select(
                    BOT_CALLS_LABELS,
                    value=bot.bot_calls.value,
                    label=f"Call {bot.display_name}",
                    on_change=lambda e, b=bot: self._set_calls(b, e.value),
                ).classes("w-full")


def _webhook_details(webhook: IncomingWebhook) -> str:
    state = f"revoked {_when(webhook.revoked_at)}" if webhook.revoked_at else "active"
    used = f"last used {_when(webhook.last_used_at)}" if webhook.last_used_at else "never used"
    return f"{state} · created {_when(webhook.created_at)} · {used}"


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else ""


def _copy(text: str, what: str) -> None:
    ui.clipboard.write(text)
    ui.notify(f"{what} copied.")

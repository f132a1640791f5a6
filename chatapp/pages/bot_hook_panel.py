"""Account settings, one bot: its outgoing webhook (set the URL, its signing secret shown once; remove)
and the latest calls of it, for the bot's owner."""

from __future__ import annotations

from datetime import datetime

from nicegui import ui

from chatapp.domain.errors import DomainError
from chatapp.domain.models import HookDelivery, OutgoingHook, User
from chatapp.domain.services import Services
from chatapp.pages.notices import refusals_noticed
from chatapp.pages.session import TabSession

CALLS_SHOWN = 10


class BotHookPanel:
    """One bot's row: its name, and a fold with its outgoing webhook and its latest calls."""

    def __init__(self, services: Services, tab: TabSession, bot: User) -> None:
        self._hooks, self._tab, self._bot = services.bot_hooks, tab, bot
        with ui.expansion(f"{bot.display_name} (@{bot.username}) · bot", icon="smart_toy").classes("w-full bot-row"):
            ui.label(
                "Outgoing webhook: this URL is called (a signed JSON POST) when a room's message is for the bot; "
                'a JSON answer with "text" is posted by the bot.'
            ).classes("text-xs opacity-70")
            with ui.row().classes("w-full no-wrap items-center gap-2"):
                self._url = ui.input("Outgoing webhook URL", placeholder="https://bot.example.com/hook")
                self._url.props("outlined dense").classes("grow")
                ui.button("Save URL", on_click=self._save).props("unelevated no-caps")
            self._secret = ui.column().classes("w-full gap-1")
            self._state = ui.column().classes("w-full gap-1")

    async def refresh(self) -> None:
        """Read the bot's webhook and its latest calls again."""
        try:
            actor = await self._tab.current()
            hook = await self._hooks.get_hook(actor, self._bot.id)
            calls = await self._hooks.list_deliveries(actor, self._bot.id, CALLS_SHOWN)
        except DomainError:
            return
        if hook is not None and not self._url.value:
            self._url.value = hook.url
        self._show(hook, calls)

    async def _save(self) -> None:
        with refusals_noticed() as refused:
            hook = await self._hooks.set_hook(await self._tab.current(), self._bot.id, self._url.value or "")
        if refused:
            return
        self._secret.clear()
        with self._secret, ui.column().classes("w-full gap-1").props('role="status"'):
            ui.label("Copy the signing secret now: it is shown only once.").classes("text-sm font-medium")
            with ui.row().classes("w-full no-wrap items-center gap-2"):
                ui.input("Signing secret", value=hook.secret).props("readonly outlined dense").classes("grow")
                ui.button("Copy", icon="content_copy", on_click=lambda: _copy(hook.secret)).props("flat no-caps")
        await self.refresh()

    async def _remove(self) -> None:
        with refusals_noticed() as refused:
            await self._hooks.remove_hook(await self._tab.current(), self._bot.id)
        if refused:
            return
        self._url.value = ""
        self._secret.clear()
        ui.notify(f"@{self._bot.username} is called no more.")
        await self.refresh()

    def _show(self, hook: OutgoingHook | None, calls: list[HookDelivery]) -> None:
        self._state.clear()
        with self._state:
            if hook is None:
                ui.label("No outgoing webhook.").classes("text-sm opacity-70")
            else:
                with ui.row().classes("w-full items-center no-wrap gap-2"):
                    ui.label(f"Calls {hook.url}").classes("text-sm grow min-w-0 break-all")
                    remove = ui.button("Remove webhook", on_click=self._remove)
                    remove.props(
                        f'flat dense no-caps color=negative aria-label="Remove the webhook of {self._bot.username}"'
                    )
            ui.label("Latest calls").classes("text-sm font-medium mt-1")
            if not calls:
                ui.label("None yet.").classes("text-xs opacity-70")
            for call in calls:
                ui.label(_call_line(call)).classes("text-xs delivery-row")


def _call_line(call: HookDelivery) -> str:
    answered = f"HTTP {call.http_status}" if call.http_status else "no answer"
    tries = f"{call.attempts} attempt{'s' if call.attempts != 1 else ''}"
    why = f" · {call.error}" if call.error else ""
    return f"{_when(call.created_at)} · {call.status.value} · {answered} · {tries}{why}"


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _copy(text: str) -> None:
    ui.clipboard.write(text)
    ui.notify("Secret copied.")

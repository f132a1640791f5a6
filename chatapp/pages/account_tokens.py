"""Account settings: personal access tokens (for scripts and the API; each shown once) and bot accounts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from nicegui import ui

from chatapp.domain.errors import DomainError
from chatapp.domain.models import ApiToken, Scope, User
from chatapp.domain.services import Services
from chatapp.pages.bot_hook_panel import BotHookPanel
from chatapp.pages.notices import refusals_noticed
from chatapp.pages.session import TabSession

SCOPE_LABELS = {
    Scope.READ: "Read rooms and messages",
    Scope.WRITE: "Post, edit and delete my messages",
    Scope.AI: "Ask the AI",
    Scope.ADMIN: "Administer my rooms, tokens and bots",
}
EXPIRY_CHOICES = {0: "Never", 7: "7 days", 30: "30 days", 90: "90 days", 365: "1 year"}
MYSELF = 0  # the "for" choice of a token of my own (else a bot's id)


def heading(text: str) -> None:
    ui.label(text).classes("text-lg font-medium mt-2").props('role="heading" aria-level="2"')


class AccountTokens:
    """The tokens and bots sections of Account settings, refreshed after each change."""

    def __init__(self, services: Services, tab: TabSession) -> None:
        self._services, self._tokens, self._tab = services, services.tokens, tab
        self._bots: list[User] = []
        heading("Personal access tokens")
        ui.label("For scripts, bots and other clients: the REST API (/api/v1/docs) and the room socket.").classes(
            "text-sm opacity-70"
        )
        self._name = ui.input("Token name", placeholder="e.g. deploy script").props("outlined dense").classes("w-full")
        self._scopes = {
            scope: ui.checkbox(label, value=scope in (Scope.READ, Scope.WRITE)) for scope, label in SCOPE_LABELS.items()
        }
        with ui.row().classes("w-full gap-2 no-wrap"):
            self._owner = ui.select({MYSELF: "Me"}, value=MYSELF, label="Token for").classes("grow")
            self._expiry = ui.select(EXPIRY_CHOICES, value=90, label="Expires after").classes("grow")
        ui.button("Create token", icon="key").props("unelevated no-caps").on_click(self._create_token)
        self._created = ui.column().classes("w-full gap-1")
        self._token_list = ui.column().classes("w-full gap-1")
        heading("Bots")
        ui.label("A bot is an account of its own, marked as a bot, that acts through its tokens.").classes(
            "text-sm opacity-70"
        )
        with ui.row().classes("w-full gap-2 no-wrap"):
            self._bot_username = ui.input("Bot username").props("outlined dense").classes("grow")
            self._bot_name = ui.input("Bot display name").props("outlined dense").classes("grow")
        ui.button("Create bot", icon="smart_toy").props("unelevated no-caps").on_click(self._create_bot)
        self._bot_list = ui.column().classes("w-full gap-1")

    async def refresh(self) -> None:
        """Read the tokens and bots again and show them."""
        actor = await self._tab.current()
        try:
            self._bots = await self._tokens.list_bots(actor)
            tokens = await self._tokens.list_tokens(actor)
        except DomainError:
            return
        self._owner.set_options({MYSELF: "Me", **{bot.id: f"Bot @{bot.username}" for bot in self._bots}})
        self._show_tokens(tokens, actor.user_id)
        await self._show_bots()

    async def _create_token(self) -> None:
        days = int(self._expiry.value or 0)
        expires_at = datetime.now(UTC) + timedelta(days=days) if days else None
        scopes = [scope.value for scope, box in self._scopes.items() if box.value]
        with refusals_noticed() as refused:
            new = await self._tokens.create_token(
                await self._tab.current(),
                name=self._name.value or "",
                scopes=scopes,
                expires_at=expires_at,
                bot_id=self._owner.value or None,
            )
        if refused:
            return
        self._name.value = ""
        self._created.clear()
        with self._created, ui.column().classes("w-full gap-1").props('role="status"'):
            ui.label("Copy the token now: it is shown only once.").classes("text-sm font-medium")
            with ui.row().classes("w-full no-wrap items-center gap-2"):
                ui.input("New token", value=new.value).props("readonly outlined dense").classes("grow")
                ui.button("Copy", icon="content_copy", on_click=lambda: _copy(new.value)).props("flat no-caps")
        await self.refresh()

    async def _revoke(self, token: ApiToken) -> None:
        with refusals_noticed() as refused:
            await self._tokens.revoke_token(await self._tab.current(), token.id)
        if refused:
            return
        ui.notify(f"Token {token.name!r} revoked.")
        await self.refresh()

    async def _create_bot(self) -> None:
        with refusals_noticed() as refused:
            bot = await self._tokens.create_bot(
                await self._tab.current(),
                username=self._bot_username.value or "",
                display_name=self._bot_name.value or self._bot_username.value or "",
            )
        if refused:
            return
        self._bot_username.value = self._bot_name.value = ""
        ui.notify(f"Bot @{bot.username} created: make it a token above, then add it to a room.")
        await self.refresh()

    def _show_tokens(self, tokens: list[ApiToken], my_id: int | None) -> None:
        whose = {bot.id: f"bot @{bot.username}" for bot in self._bots}
        now = datetime.now(UTC)
        self._token_list.clear()
        with self._token_list:
            if not tokens:
                ui.label("No tokens yet.").classes("text-sm opacity-70")
            for token in tokens:
                owner = "mine" if token.user_id == my_id else whose.get(token.user_id, "")
                with ui.row().classes("w-full items-center no-wrap gap-2 token-row"):
                    with ui.column().classes("gap-0 grow min-w-0"):
                        ui.label(f"{token.name} · {owner} · {token.prefix}…").classes("text-sm")
                        ui.label(_token_details(token, now)).classes("text-xs opacity-70")
                    revoke = ui.button("Revoke", on_click=lambda t=token: self._revoke(t))
                    revoke.props(f'flat dense no-caps color=negative aria-label="Revoke token {token.name}"')

    async def _show_bots(self) -> None:
        self._bot_list.clear()
        with self._bot_list:
            if not self._bots:
                ui.label("No bots yet.").classes("text-sm opacity-70")
            panels = [BotHookPanel(self._services, self._tab, bot) for bot in self._bots]
        for panel in panels:
            await panel.refresh()


def _token_details(token: ApiToken, now: datetime) -> str:
    scopes = ", ".join(sorted(token.scopes))
    if token.is_expired(now):
        expiry = "expired"
    else:
        expiry = f"expires {_when(token.expires_at)}" if token.expires_at else "never expires"
    used = f"last used {_when(token.last_used_at)}" if token.last_used_at else "never used"
    return f"{scopes} · {expiry} · {used}"


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else ""


def _copy(text: str) -> None:
    ui.clipboard.write(text)
    ui.notify("Token copied.")

"""Browser sessions: the cookie, safe redirect targets, signed flash data, the per-tab guard."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from nicegui import Client, ui

from chatapp.domain.accounts import Accounts
from chatapp.domain.errors import NotAuthenticated
from chatapp.domain.models import Actor

SESSION_COOKIE = "chatapp_session"
GUEST_COOKIE = "chatapp_guest"  # a guest's session (someone who joined by an invite link)
FLASH_MAX_AGE_S = 300
RECHECK_AFTER_S = 1.0  # an open tab re-reads its session at most this often (revocations are pushed at once)


def session_token(request: Request) -> str | None:
    """The raw session token from the request's cookie, if any."""
    return request.cookies.get(SESSION_COOKIE) or None


def guest_token(request: Request) -> str | None:
    """The raw guest session token from the request's cookie, if any."""
    return request.cookies.get(GUEST_COOKIE) or None


async def request_actor(accounts: Accounts, request: Request) -> tuple[Actor | None, str | None]:
    """Who is visiting, and with which token: a signed-in user first, else a guest, else nobody."""
    token = session_token(request)
    actor = await accounts.authenticate(token)
    if actor is None and (guest := guest_token(request)):
        token, actor = guest, await accounts.authenticate_guest(guest)
    return actor, token if actor is not None else None


def safe_next(target: str | None, default: str = "/") -> str:
    """A redirect target that stays on this site: a relative path, nothing else."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or any(ord(ch) < 32 for ch in target):
        return default
    return target


def sign_in_url(next_path: str | None = None) -> str:
    """The sign-in page, remembering where to come back to."""
    target = safe_next(next_path, "")
    return f"/sign-in?next={quote(target, safe='/')}" if target and target != "/" else "/sign-in"


class Flash:
    """Form errors and values carried across a POST-redirect-GET, signed so nobody can forge them."""

    def __init__(self, secret: str) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="chatapp-flash")

    def dump(self, data: dict[str, Any]) -> str:
        """Sign data for a query string."""
        return self._serializer.dumps(data)

    def load(self, token: str | None) -> dict[str, Any]:
        """Read signed data back; anything forged, stale or missing gives {}."""
        if not token:
            return {}
        try:
            data = self._serializer.loads(token, max_age=FLASH_MAX_AGE_S)
        except BadSignature:
            return {}
        return data if isinstance(data, dict) else {}


class TabSession:
    """The session a tab was opened with. Every action re-checks it; revocation sends the tab away."""

    def __init__(self, accounts: Accounts, token: str | None, actor: Actor, client: Client) -> None:
        self._accounts = accounts
        self._token = token
        self.actor = actor
        self._client = client
        self._checked_at = time.monotonic()  # the page builder has just authenticated the token
        self._revoked = False
        self._on_leave: list[Callable[[], None]] = []

    async def current(self, *, fresh: bool = False) -> Actor:
        """The actor, re-checked against the database; raises NotAuthenticated when revoked.

        A burst of actions re-reads the session at most once per RECHECK_AFTER_S; revocations do
        not wait for that, they are pushed to the tab (recheck, fresh=True) the moment they happen.
        Once the session is found revoked the tab stays revoked, whatever check finishes later.
        """
        if self._revoked:
            raise NotAuthenticated()
        now = time.monotonic()
        if not fresh and now - self._checked_at < RECHECK_AFTER_S:
            return self.actor
        if self.actor.is_guest:
            actor = await self._accounts.authenticate_guest(self._token)
        else:
            actor = await self._accounts.authenticate(self._token)
        if actor is None or self._revoked:
            self.leave()
            raise NotAuthenticated()
        self.actor = actor
        self._checked_at = max(self._checked_at, now)
        return actor

    async def recheck(self) -> None:
        """Called when any session of the user was revoked: leave if it was ours."""
        with contextlib.suppress(NotAuthenticated):
            await self.current(fresh=True)

    def on_leave(self, stop: Callable[[], None]) -> None:
        """Call `stop` when the session is found revoked (e.g. to stop the tab's live feeds at once)."""
        self._on_leave.append(stop)

    def leave(self) -> None:
        """Stop everything the tab receives and send it to the sign-in page (it comes back here if the
        browser is still signed in). The server does not rely on the browser obeying."""
        first_time = not self._revoked
        self._revoked = True
        if first_time:
            for stop in self._on_leave:
                stop()
        request = self._client.request
        with self._client:
            ui.navigate.to(sign_in_url(request.url.path if request else "/"))

    def watch_revocations(self, watch: Callable[[Actor, Callable[[], Awaitable[None]]], Callable[[], None]]) -> None:
        """Subscribe to the user's (or guest's) revocations for as long as the tab lives."""
        stop = watch(self.actor, self.recheck)
        self._client.on_delete(stop)

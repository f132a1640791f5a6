"""A simulated chatapp: the real app (pages, endpoints, database) driven by NiceGUI's simulated users."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
from nicegui import context, core, ui
from nicegui.functions.navigate import Navigate
from nicegui.functions.notify import notify
from nicegui.testing.general import nicegui_reset_globals
from nicegui.testing.user import User

from chatapp.app import Runtime, run_web_app
from tests.domain.helpers import PASSWORD
from tests.timing import SHOULD_NOT_SEE_RETRIES, SHOULD_SEE_RETRIES


class RoutedUser(User):
    """A simulated user whose ui.navigate / ui.notify calls are found by the acting tab's client.

    NiceGUI's User points the global ui.navigate and ui.notify at whichever User had an attribute
    read last, and its outbox hook reads attributes whenever that user's page receives an update.
    With several users in one test, a navigation that follows an `await` in a click handler could
    then be carried out by another user's browser. Routing by `context.client` (the tab whose
    handler is running) makes the simulation behave like separate browsers.

    Its should_see and should_not_see wait up to tests/timing.py's LIVENESS_S, not NiceGUI's 0.3 s.
    """

    def __getattribute__(self, name: str):
        return object.__getattribute__(self, name)

    async def should_see(self, *args, retries: int = SHOULD_SEE_RETRIES, **kwargs) -> None:
        """NiceGUI's should_see, waiting up to LIVENESS_S (its own default gives up after 0.3 s): it returns
        as soon as the element is there, so only a failing test waits that long."""
        await super().should_see(*args, retries=retries, **kwargs)

    async def should_not_see(self, *args, retries: int = SHOULD_NOT_SEE_RETRIES, **kwargs) -> None:
        """NiceGUI's should_not_see, waiting up to LIVENESS_S for the element to go: it returns as soon as the
        element is absent (at once when it never was), so a passing test does not wait."""
        await super().should_not_see(*args, retries=retries, **kwargs)


class _RouteToActingUser:
    """Stands in for ui.navigate or ui.notify and forwards to the acting tab's simulated user."""

    def __init__(self, users: list[RoutedUser], attribute: str) -> None:
        self._users = users
        self._attribute = attribute

    def _target(self):
        client = context.client
        for user in self._users:
            if user.client is client:
                return getattr(user, self._attribute)
        raise LookupError(f"no simulated user is viewing client {client.id}")

    def __call__(self, *args, **kwargs):
        return self._target()(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self._target(), name)


@asynccontextmanager
async def simulated_app(settings) -> AsyncIterator[tuple[Runtime, Callable[[], User]]]:
    """Build the real app under NiceGUI's user simulation and yield a factory of browser-less users."""
    with nicegui_reset_globals():
        os.environ["NICEGUI_USER_SIMULATION"] = "true"
        clients: list[httpx.AsyncClient] = []
        users: list[RoutedUser] = []
        try:
            runtime = run_web_app(settings)
            ui.navigate = _RouteToActingUser(users, "navigate")
            ui.notify = _RouteToActingUser(users, "notify")

            def new_user() -> User:
                client = httpx.AsyncClient(transport=httpx.ASGITransport(core.app), base_url="http://test")
                clients.append(client)
                users.append(RoutedUser(client))
                return users[-1]

            async with core.app.router.lifespan_context(core.app):
                yield runtime, new_user
            for client in clients:
                await client.aclose()
            runtime.engine.dispose()
        finally:
            os.environ.pop("NICEGUI_USER_SIMULATION", None)
            ui.navigate = Navigate()
            ui.notify = notify


@pytest.fixture
async def app(settings):
    async with simulated_app(settings) as built:
        yield built


async def signed_up(new_user: Callable[[], User], username: str, display_name: str) -> User:
    """A simulated user who signed up through the real POST endpoint (the cookie stays in its client)."""
    user = new_user()
    response = await user.http_client.post(
        "/auth/sign-up", data={"username": username, "display_name": display_name, "password": PASSWORD}
    )
    assert response.status_code == 303, response.text
    return user

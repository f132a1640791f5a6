"""A simulated chatapp: the real app (pages, endpoints, database) driven by NiceGUI's simulated users."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
from nicegui import core, ui
from nicegui.functions.navigate import Navigate
from nicegui.functions.notify import notify
from nicegui.testing.general import nicegui_reset_globals
from nicegui.testing.user import User

from chatapp.app import Runtime, run_web_app
from tests.domain.helpers import PASSWORD


@asynccontextmanager
async def simulated_app(settings) -> AsyncIterator[tuple[Runtime, Callable[[], User]]]:
    """Build the real app under NiceGUI's user simulation and yield a factory of browser-less users."""
    with nicegui_reset_globals():
        os.environ["NICEGUI_USER_SIMULATION"] = "true"
        clients: list[httpx.AsyncClient] = []
        try:
            runtime = run_web_app(settings)

            def new_user() -> User:
                client = httpx.AsyncClient(transport=httpx.ASGITransport(core.app), base_url="http://test")
                clients.append(client)
                return User(client)

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

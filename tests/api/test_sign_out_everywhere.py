"""Signing out everywhere, through a real server: the person's sessions end and their tokens' sockets
close within a second; their bots' tokens keep working."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
import websockets

from chatapp.pages.session import SESSION_COOKIE
from tests.api.conftest import running_server
from tests.api.test_socket import Client, socket_url
from tests.domain.helpers import PASSWORD, sign_up


async def test_signing_out_everywhere_ends_sessions_and_closes_token_sockets_but_not_bots(tmp_path: Path) -> None:
    with running_server(tmp_path / "data") as (app, runtime):
        alice, _ = await sign_up(runtime, "alice")
        tokens = runtime.services.tokens
        mine = await tokens.create_token(alice, name="script", scopes=["read"])
        bot = await tokens.create_bot(alice, username="helper", display_name="Helper")
        bots = await tokens.create_token(alice, name="bot", scopes=["read"], bot_id=bot.id)
        async with httpx.AsyncClient(base_url=app.base_url, follow_redirects=False) as browser:
            signed_in = await browser.post("/auth/sign-in", data={"username": "alice", "password": PASSWORD})
            assert signed_in.status_code == 303 and browser.cookies.get(SESSION_COOKIE)
            session = browser.cookies[SESSION_COOKIE]
            async with websockets.connect(socket_url(app, token=mine.value)) as ws:
                client = Client(ws)
                assert (await client.call("phoenix", "heartbeat", {}))["status"] == "ok"
                done = await browser.post("/auth/sign-out-everywhere", headers={"Origin": app.base_url})
                assert done.status_code == 303 and done.headers["location"] == "/sign-in"
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    async with asyncio.timeout(1.5):
                        while True:
                            await client.next_frame()
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001
        async with httpx.AsyncClient(base_url=app.base_url, cookies={SESSION_COOKIE: session}) as later:
            account = await later.get("/account")
            assert account.status_code == 303 and "/sign-in" in account.headers["location"]  # the session is gone
            me = "/api/v1/me"
            assert (await later.get(me, headers={"Authorization": f"Bearer {mine.value}"})).status_code == 401
            assert (await later.get(me, headers={"Authorization": f"Bearer {bots.value}"})).status_code == 200

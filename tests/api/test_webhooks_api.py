"""Webhooks through a real server: an incoming webhook's URL posts live into the room (a room-socket
client sees it), with JSON errors and the secret kept out of the log; a bot's outgoing webhook is called
over HTTP by the server and its answer shows in the room."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from aiohttp import web

from chatapp.app import Runtime
from tests.api.conftest import running_server
from tests.api.test_socket import Client, socket_url, token_for
from tests.browser.conftest import RunningApp
from tests.domain.helpers import sign_up
from tests.timing import LIVENESS_S

API = "/api/v1"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[RunningApp, Runtime]]:
    env = {
        "CHATAPP_LOG_LEVEL": "info",
        "CHATAPP_WEBHOOK_ALLOW_PRIVATE": "true",  # the bot below listens on 127.0.0.1
        "CHATAPP_WEBHOOK_BACKOFF": "0.05",
        "CHATAPP_MESSAGE_BURST": "5",
        "CHATAPP_MESSAGE_PER_SECOND": "0.01",
    }
    with running_server(tmp_path / "data", env) as running:
        yield running


async def test_an_incoming_webhook_posts_live_with_json_errors_and_a_secret_kept_out_of_the_log(
    server, tmp_path: Path
) -> None:
    app, runtime = server
    olive, _ = await sign_up(runtime, "olive", "Olive")
    room = await runtime.services.rooms.create_room(olive, name="Deploys", private=True)
    token = await token_for(runtime, olive, "read", "write", "admin")
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=app.base_url) as http:
        made = await http.post(f"{API}/rooms/{room.id}/webhooks", headers=headers, json={"name": "CI"})
        assert made.status_code == 201, made.text
        url_path = made.json()["url_path"]
        assert url_path.startswith(f"{API}/hooks/whk_")
        listed = (await http.get(f"{API}/rooms/{room.id}/webhooks", headers=headers)).json()
        assert [w["name"] for w in listed] == ["CI"] and "url_path" not in listed[0]

        async with websockets.connect(socket_url(app, token=token)) as ws:
            client = Client(ws)
            _, joined = await client.join(room.id)
            assert joined["status"] == "ok"
            posted = await http.post(url_path, json={"text": "build 42 **passed**", "username": "Jenkins"})
            assert posted.status_code == 201, posted.text
            frame = await client.wait_for("message_posted")
            message = frame[4]["message"]
            assert (message["body"], message["author_name"], message["author_kind"]) == (
                "build 42 **passed**",
                "Jenkins",
                "webhook",
            )
            assert message["id"] == posted.json()["message_id"]

        for body, status, code in (
            ({"text": ""}, 422, "invalid"),
            ({"text": "x" * 50_000}, 422, "invalid"),
            ({"text": "hi", "username": "Assistant"}, 422, "invalid"),
            ({"txt": "typo"}, 422, "invalid"),
        ):
            refused = await http.post(url_path, json=body)
            assert (refused.status_code, refused.json()["error"]["code"]) == (status, code), refused.text
        not_json = await http.post(url_path, content=b"{not json", headers={"Content-Type": "application/json"})
        assert not_json.status_code == 422 and not_json.json()["error"]["code"] == "invalid"
        unknown = await http.post(f"{API}/hooks/whk_{'A' * 43}", json={"text": "hi"})
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"

        statuses = [(await http.post(url_path, json={"text": f"burst {n}"})).status_code for n in range(6)]
        assert 429 in statuses  # the room's message rate (a burst of 5)
        limited = await http.post(url_path, json={"text": "again"})
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1

        webhook_id = listed[0]["id"]
        assert (await http.delete(f"{API}/rooms/{room.id}/webhooks/{webhook_id}", headers=headers)).status_code == 204
        assert (await http.post(url_path, json={"text": "after revoking"})).status_code == 404
    port = app.base_url.rsplit(":", 1)[1]
    logged = (tmp_path / f"server-{port}.log").read_text()
    secret = url_path.rsplit("/", 1)[1]
    assert "/api/v1/hooks/" in logged and secret not in logged and secret[4:24] not in logged


async def test_a_bots_outgoing_webhook_is_called_by_the_server_and_answers_in_the_room(server) -> None:
    app, runtime = server
    calls: list[tuple[dict, bytes]] = []

    async def bot_endpoint(request: web.Request) -> web.Response:
        body = await request.read()
        calls.append((dict(request.headers), body))
        asked = json.loads(body)["message"]["body"]
        return web.json_response({"text": f"you said: {asked}"})

    receiver = web.Application()
    receiver.router.add_post("/bot", bot_endpoint)
    runner = web.AppRunner(receiver, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        olive, _ = await sign_up(runtime, "olive", "Olive")
        room = await runtime.services.rooms.create_room(olive, name="Ops")
        token = await token_for(runtime, olive, "read", "write", "admin")
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=app.base_url, headers=headers) as http:
            bot = (await http.post(f"{API}/bots", json={"username": "echo", "display_name": "Echo"})).json()
            hook_url = f"http://127.0.0.1:{runner.addresses[0][1]}/bot"
            hook = await http.put(f"{API}/bots/{bot['id']}/hook", json={"url": hook_url})
            assert hook.status_code == 200, hook.text
            secret = hook.json()["secret"]
            assert "secret" not in (await http.get(f"{API}/bots/{bot['id']}/hook")).json()
            assert (await http.post(f"{API}/rooms/{room.id}/bots", json={"username": "echo"})).status_code == 201
            posted = await http.post(f"{API}/rooms/{room.id}/messages", json={"body": "@echo hello there"})
            assert posted.status_code == 201
            bodies: list[str] = []
            deadline = time.monotonic() + LIVENESS_S
            while time.monotonic() < deadline and len(bodies) < 2:
                page = (await http.get(f"{API}/rooms/{room.id}/messages")).json()
                bodies = [m["body"] for m in page["messages"]]
                await asyncio.sleep(0.05)
            assert bodies == ["@echo hello there", "you said: @echo hello there"]
            assert page["messages"][1]["author_kind"] == "bot"
            [(call_headers, call_body)] = calls
            stamp = call_headers["X-Chatapp-Timestamp"]
            mac = hmac.new(secret.encode(), stamp.encode() + b"." + call_body, hashlib.sha256).hexdigest()
            assert call_headers["X-Chatapp-Signature"] == f"sha256={mac}"
            deliveries = (await http.get(f"{API}/bots/{bot['id']}/hook/deliveries")).json()
            assert [(d["status"], d["http_status"], d["attempts"]) for d in deliveries] == [("delivered", 200, 1)]
            assert deliveries[0]["event_id"] == call_headers["X-Chatapp-Event-Id"]
    finally:
        await runner.cleanup()

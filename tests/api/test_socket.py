"""The room socket of a real `python -m chatapp`, driven with the `websockets` client as any Phoenix v2
client would: authentication, joins, live pushes, pushes with replies, resuming, limits, revocation."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from chatapp.app import Runtime
from chatapp.domain.models import Actor
from tests.api.conftest import running_server
from tests.browser.conftest import RunningApp
from tests.domain.helpers import sign_up
from tests.timing import LIVENESS_S


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[RunningApp, Runtime]]:
    """A running server, and the services of its database (to set up people and tokens as the app would)."""
    limits = {"CHATAPP_SOCKET_IDLE_TIMEOUT": "3", "CHATAPP_SOCKET_MAX_FRAME_BYTES": "4096"}
    with running_server(tmp_path / "data", limits) as running:
        yield running


def socket_url(app: RunningApp, **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in {**params, "vsn": "2.0.0"}.items())
    return app.base_url.replace("http", "ws") + f"/api/socket/websocket?{query}"


async def token_for(runtime: Runtime, actor: Actor, *scopes: str) -> str:
    new = await runtime.services.tokens.create_token(actor, name="t", scopes=list(scopes or ("read", "write", "ai")))
    return new.value


class Client:
    """A Phoenix v2 client in a few lines: numbered refs, replies matched to pushes, pushes collected."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws, self.ref, self.pushes = ws, 0, []

    async def send(self, topic: str, event: str, payload: dict[str, Any], join_ref: str | None = None) -> str:
        self.ref += 1
        await self.ws.send(json.dumps([join_ref, str(self.ref), topic, event, payload]))
        return str(self.ref)

    async def call(self, topic: str, event: str, payload: dict[str, Any], join_ref: str | None = None) -> dict:
        ref = await self.send(topic, event, payload, join_ref)
        while True:
            frame = await self.next_frame()
            if frame[1] == ref and frame[3] == "phx_reply":
                return frame[4]
            self.pushes.append(frame)

    async def join(self, room_id: int, **payload: Any) -> tuple[str, dict]:
        join_ref = str(self.ref + 1)
        return join_ref, await self.call(f"room:{room_id}", "phx_join", payload, join_ref)

    async def next_frame(self) -> list:
        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout=LIVENESS_S))

    async def wait_for(self, event: str) -> list:
        for frame in self.pushes:
            if frame[3] == event:
                self.pushes.remove(frame)
                return frame
        while True:
            frame = await self.next_frame()
            if frame[3] == event:
                return frame
            self.pushes.append(frame)


async def test_a_token_in_the_query_joins_a_room_and_hears_messages_live(server) -> None:
    app, runtime = server
    alice, _ = await sign_up(runtime, "alice")
    room = await runtime.services.rooms.create_room(alice, name="Ops")
    await runtime.services.chat.post_message(alice, room.id, "before the join")
    token = await token_for(runtime, alice)
    async with websockets.connect(socket_url(app, token=token)) as ws:
        client = Client(ws)
        assert (await client.call("phoenix", "heartbeat", {}))["status"] == "ok"
        join_ref, joined = await client.join(room.id)
        assert joined["status"] == "ok", joined
        assert [m["body"] for m in joined["response"]["messages"]] == ["before the join"]
        assert joined["response"]["room"]["name"] == "Ops" and joined["response"]["participant_id"]
        headers = {"Authorization": f"Bearer {await token_for(runtime, alice)}"}
        posted = httpx.post(f"{app.base_url}/api/v1/rooms/{room.id}/messages", headers=headers, json={"body": "live!"})
        assert posted.status_code == 201
        frame = await client.wait_for("message_posted")
        assert frame[2] == f"room:{room.id}" and frame[4]["message"]["body"] == "live!"
        reply = await client.call(
            f"room:{room.id}", "post", {"body": "from the socket", "client_message_id": "sock-0001"}, join_ref
        )
        again = await client.call(
            f"room:{room.id}", "post", {"body": "from the socket", "client_message_id": "sock-0001"}, join_ref
        )
        assert reply["status"] == again["status"] == "ok"
        assert reply["response"]["message"]["id"] == again["response"]["message"]["id"]
        assert reply["response"]["message"]["client_message_id"] == "sock-0001"
    page = await runtime.services.chat.list_messages(alice, room.id)
    assert [m.body for m in page.messages] == ["before the join", "live!", "from the socket"]


async def test_phoenix_js_auth_token_subprotocol_and_bearer_header_are_accepted(server) -> None:
    import base64

    app, runtime = server
    alice, _ = await sign_up(runtime, "alice")
    token = await token_for(runtime, alice)
    encoded = base64.b64encode(token.encode()).decode().rstrip("=")
    url = socket_url(app)
    async with websockets.connect(url, subprotocols=["phoenix", f"base64url.bearer.phx.{encoded}"]) as ws:
        assert ws.subprotocol == "phoenix"
        assert (await Client(ws).call("phoenix", "heartbeat", {}))["status"] == "ok"
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        assert (await Client(ws).call("phoenix", "heartbeat", {}))["status"] == "ok"


async def test_no_token_or_a_bad_one_is_refused(server) -> None:
    app, _runtime = server
    for url in (socket_url(app), socket_url(app, token="chat_wrong")):
        with pytest.raises(websockets.InvalidStatus):
            async with websockets.connect(url):
                pass


async def test_unknown_and_forbidden_rooms_answer_the_same_and_the_socket_stays_up(server) -> None:
    app, runtime = server
    alice, _ = await sign_up(runtime, "alice")
    bob, _ = await sign_up(runtime, "bob")
    secret = await runtime.services.rooms.create_room(alice, name="Secret", private=True)
    async with websockets.connect(socket_url(app, token=await token_for(runtime, bob))) as ws:
        client = Client(ws)
        _, forbidden = await client.join(secret.id)
        _, unknown = await client.join(987654)
        assert forbidden["status"] == unknown["status"] == "error"
        assert forbidden["response"] == unknown["response"]
        assert forbidden["response"]["reason"] == "unmatched topic"
        other = await client.call("lobby", "phx_join", {}, "9")
        assert other["status"] == "error" and other["response"]["reason"] == "unmatched topic"
        assert (await client.call("phoenix", "heartbeat", {}))["status"] == "ok"


async def test_malformed_frames_get_an_error_and_a_too_big_one_closes(server) -> None:
    app, runtime = server
    alice, _ = await sign_up(runtime, "alice")
    async with websockets.connect(socket_url(app, token=await token_for(runtime, alice))) as ws:
        client = Client(ws)
        for bad in ("not json", "[1,2,3]", '{"a": 1}', '[null, "1", "room:1", "post", "text"]', "[" * 3000):
            await ws.send(bad)
            frame = await client.next_frame()
            assert frame[3] == "phx_error" and frame[4]["reason"], bad
        assert (await client.call("phoenix", "heartbeat", {}))["status"] == "ok"
        await ws.send(json.dumps([None, "1", "phoenix", "heartbeat", {"pad": "x" * 5000}]))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await client.next_frame()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_a_refused_push_answers_with_the_rest_error_code(server) -> None:
    app, runtime = server
    alice, _ = await sign_up(runtime, "alice")
    room = await runtime.services.rooms.create_room(alice, name="Ops")
    async with websockets.connect(socket_url(app, token=await token_for(runtime, alice, "read"))) as ws:
        client = Client(ws)
        join_ref, joined = await client.join(room.id)
        assert joined["status"] == "ok"
        refused = await client.call(f"room:{room.id}", "post", {"body": "hi"}, join_ref)
        assert refused["status"] == "error" and refused["response"]["code"] == "missing_scope"
        empty = await client.call(f"room:{room.id}", "edit", {"message_id": "x", "body": "y"}, join_ref)
        assert empty["response"]["code"] == "invalid"
        unknown = await client.call(f"room:{room.id}", "dance", {}, join_ref)
        assert unknown["status"] == "error" and unknown["response"]["code"] == "not_found"


async def test_revoking_the_token_closes_its_socket_within_a_second(server) -> None:
    app, runtime = server
    alice, _ = await sign_up(runtime, "alice")
    new = await runtime.services.tokens.create_token(alice, name="t", scopes=["read", "admin"])
    async with websockets.connect(socket_url(app, token=new.value)) as ws:
        client = Client(ws)
        assert (await client.call("phoenix", "heartbeat", {}))["status"] == "ok"
        response = httpx.delete(
            f"{app.base_url}/api/v1/tokens/{new.token.id}", headers={"Authorization": f"Bearer {new.value}"}
        )
        assert response.status_code == 204
        with pytest.raises(websockets.ConnectionClosed) as closed:
            async with asyncio.timeout(1.5):
                while True:
                    await client.next_frame()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001


async def test_a_removed_bot_is_told_and_its_channel_closed(server) -> None:
    app, runtime = server
    alice, _ = await sign_up(runtime, "alice")
    tokens = runtime.services.tokens
    bot = await tokens.create_bot(alice, username="helper", display_name="Helper")
    token = (await tokens.create_token(alice, name="b", scopes=["read", "write"], bot_id=bot.id)).value
    room = await runtime.services.rooms.create_room(alice, name="Ops")
    added = await runtime.services.membership.add_bot(alice, room.id, "helper")
    async with websockets.connect(socket_url(app, token=token)) as ws:
        client = Client(ws)
        join_ref, joined = await client.join(room.id)
        assert joined["status"] == "ok" and joined["response"]["participant_id"] == added.id
        headers = {"Authorization": f"Bearer {await token_for(runtime, alice, 'admin')}"}
        removed = httpx.delete(f"{app.base_url}/api/v1/rooms/{room.id}/participants/{added.id}", headers=headers)
        assert removed.status_code == 204
        told = await client.wait_for("removed")
        assert told[4] == {"reason": "removed"} and told[0] == join_ref
        closed = await client.wait_for("phx_close")
        assert closed[2] == f"room:{room.id}"
        post = await client.call(f"room:{room.id}", "post", {"body": "still here?"}, join_ref)
        assert post["status"] == "error"


async def test_my_own_topic_tells_a_bot_and_a_person_which_rooms_they_came_into_or_left(server) -> None:
    app, runtime = server
    alice, _ = await sign_up(runtime, "alice")
    bob, _ = await sign_up(runtime, "bob")
    tokens = runtime.services.tokens
    bot = await tokens.create_bot(alice, username="helper", display_name="Helper")
    bot_token = (await tokens.create_token(alice, name="b", scopes=["read", "write"], bot_id=bot.id)).value
    api = f"{app.base_url}/api/v1"
    as_alice = {"Authorization": f"Bearer {await token_for(runtime, alice, 'read', 'write', 'admin')}"}
    as_bob = {"Authorization": f"Bearer {await token_for(runtime, bob, 'read', 'write')}"}
    async with (
        websockets.connect(socket_url(app, token=bot_token)) as bot_ws,
        websockets.connect(socket_url(app, token=await token_for(runtime, bob))) as bob_ws,
    ):
        bot_client, bob_client = Client(bot_ws), Client(bob_ws)
        someone_else = await bot_client.call(f"user:{alice.user_id}", "phx_join", {})
        nobody = await bot_client.call("user:999999", "phx_join", {})
        assert someone_else == nobody and nobody["response"]["reason"] == "unmatched topic"
        joined = await bot_client.call(f"user:{bot.id}", "phx_join", {}, join_ref="u1")
        assert joined["status"] == "ok" and joined["response"]["rooms"] == []
        assert (await bob_client.call(f"user:{bob.user_id}", "phx_join", {}, join_ref="u2"))["status"] == "ok"

        room = httpx.post(f"{api}/rooms", headers=as_alice, json={"name": "Ops"}).json()
        added = httpx.post(f"{api}/rooms/{room['id']}/bots", headers=as_alice, json={"username": "helper"})
        assert added.status_code == 201
        told = await bot_client.wait_for("room_joined")
        assert told[:3] == ["u1", None, f"user:{bot.id}"] and told[4]["room"]["name"] == "Ops"
        _, in_room = await bot_client.join(room["id"])  # what a bot does on room_joined
        assert in_room["status"] == "ok"
        httpx.delete(f"{api}/rooms/{room['id']}/participants/{added.json()['id']}", headers=as_alice)
        assert (await bot_client.wait_for("room_left"))[4] == {"room_id": room["id"], "reason": "removed"}

        assert httpx.post(f"{api}/rooms/{room['id']}/join", headers=as_bob).status_code == 200
        assert (await bob_client.wait_for("room_joined"))[4]["room"]["id"] == room["id"]
        assert httpx.post(f"{api}/rooms/{room['id']}/leave", headers=as_bob).status_code == 204
        assert (await bob_client.wait_for("room_left"))[4] == {"room_id": room["id"], "reason": "left"}
        httpx.post(f"{api}/rooms/{room['id']}/join", headers=as_bob)
        await bob_client.wait_for("room_joined")
        deleted = httpx.delete(f"{api}/rooms/{room['id']}?confirm_name=Ops", headers=as_alice)
        assert deleted.status_code == 204
        assert (await bob_client.wait_for("room_left"))[4] == {"room_id": room["id"], "reason": "deleted"}
        rejoined = await bob_client.call(f"user:{bob.user_id}", "phx_join", {}, join_ref="u3")
        assert rejoined["response"]["rooms"] == []


async def test_rejoining_with_the_last_message_seen_gets_what_was_missed(server) -> None:
    app, runtime = server
    alice, _ = await sign_up(runtime, "alice")
    room = await runtime.services.rooms.create_room(alice, name="Ops")
    first = await runtime.services.chat.post_message(alice, room.id, "seen")
    token = await token_for(runtime, alice)
    async with websockets.connect(socket_url(app, token=token)) as ws:
        _, joined = await Client(ws).join(room.id)
        since = joined["response"]["server_time"]
    missed_one = await runtime.services.chat.post_message(alice, room.id, "missed")
    await runtime.services.chat.delete_message(alice, room.id, first.id)
    async with websockets.connect(socket_url(app, token=token)) as ws:
        _, rejoined = await Client(ws).join(room.id, last_message_id=first.id, since=since)
        missed = rejoined["response"]["missed"]
        assert missed["reload"] is False
        assert [m["id"] for m in missed["new"]] == [missed_one.id] and missed["deleted_ids"] == [first.id]
        _, bad = await Client(ws).join(room.id, last_message_id="yesterday")
        assert bad["status"] == "error" and bad["response"]["code"] == "invalid"


async def test_an_idle_socket_is_closed(server) -> None:
    app, runtime = server
    alice, _ = await sign_up(runtime, "alice")
    async with websockets.connect(socket_url(app, token=await token_for(runtime, alice))) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), timeout=LIVENESS_S)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_presence_says_who_is_in_the_room_one_meta_per_connection(server) -> None:
    app, runtime = server
    alice, _ = await sign_up(runtime, "alice")
    bob, _ = await sign_up(runtime, "bob")
    room = await runtime.services.rooms.create_room(alice, name="Ops")
    await runtime.services.membership.join(bob, room.id)
    alice_url = socket_url(app, token=await token_for(runtime, alice))
    bob_url = socket_url(app, token=await token_for(runtime, bob))
    async with websockets.connect(alice_url) as alice_ws:
        watcher = Client(alice_ws)
        _, joined = await watcher.join(room.id)
        assert joined["status"] == "ok"
        state = (await watcher.wait_for("presence_state"))[4]
        assert (
            list(state) == [f"user:{alice.user_id}"] and state[f"user:{alice.user_id}"]["metas"][0]["via"] == "socket"
        )
        own = (await watcher.wait_for("presence_diff"))[4]  # its own arrival, told to the room (as Phoenix does)
        assert list(own["joins"]) == [f"user:{alice.user_id}"]
        bobs = []
        for _ in range(2):  # two connections of Bob's: one key, two metas
            bob_ws = await websockets.connect(bob_url)
            bobs.append(bob_ws)
            _, bob_joined = await Client(bob_ws).join(room.id)
            assert bob_joined["status"] == "ok"
            diff = (await watcher.wait_for("presence_diff"))[4]
            assert list(diff["joins"]) == [f"user:{bob.user_id}"] and diff["leaves"] == {}
            meta = diff["joins"][f"user:{bob.user_id}"]["metas"][0]
            assert meta["display_name"] == "Bob" and meta["participant_id"] is not None and meta["phx_ref"]
        for bob_ws in bobs:
            await bob_ws.close()
            gone = (await watcher.wait_for("presence_diff"))[4]
            assert list(gone["leaves"]) == [f"user:{bob.user_id}"] and gone["joins"] == {}


async def test_the_access_log_never_shows_a_token(tmp_path: Path) -> None:
    with running_server(tmp_path / "data", {"CHATAPP_LOG_LEVEL": "info"}) as (app, runtime):
        alice, _ = await sign_up(runtime, "alice")
        token = await token_for(runtime, alice)
        async with websockets.connect(socket_url(app, token=token)) as ws:
            assert (await Client(ws).call("phoenix", "heartbeat", {}))["status"] == "ok"
        httpx.get(f"{app.base_url}/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        httpx.get(f"{app.base_url}/api/v1/me?token={token}")
    port = app.base_url.rsplit(":", 1)[1]
    logged = (tmp_path / f"server-{port}.log").read_text()
    assert "/api/socket/websocket" in logged and "/api/v1/me" in logged  # the lines are there...
    assert token not in logged and token[len("chat_") :][:20] not in logged  # ...without the token


async def test_the_room_socket_is_not_compressed_while_the_pages_socket_still_is(server) -> None:
    """permessage-deflate is declined for room sockets only (chatapp/server.py): NiceGUI's keeps it."""
    app, runtime = server
    alice, _ = await sign_up(runtime, "alice")
    async with websockets.connect(socket_url(app, token=await token_for(runtime, alice))) as ws:
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        assert (await Client(ws).call("phoenix", "heartbeat", {}))["status"] == "ok"
    pages_socket = app.base_url.replace("http", "ws") + "/_nicegui_ws/socket.io/?EIO=4&transport=websocket"
    async with websockets.connect(pages_socket) as ws:
        assert "permessage-deflate" in ws.response.headers.get("Sec-WebSocket-Extensions", "")

"""Two real `python -m chatapp` processes on one PostgreSQL database, their bus its LISTEN/NOTIFY (the
default there): what is done through one process reaches the room sockets of the other, and a lost
listening connection costs a socket nothing (it is told to rejoin, and its rejoin catches it up)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from sqlalchemy import create_engine, text

from chatapp.app import Runtime, build_runtime, migrate_database
from chatapp.config import Settings
from tests.api.test_socket import Client, socket_url, token_for
from tests.browser.conftest import RunningApp, start_app, stop_app
from tests.domain.helpers import sign_up
from tests.fake_llm import FakeLLM, Script
from tests.timing import LIVENESS_S

pytestmark = pytest.mark.postgres
SECRET = "two-processes-secret-0123456789abcdefghijklmnop"


@pytest.fixture
def fake() -> Iterator[FakeLLM]:
    with FakeLLM() as llm:
        yield llm


@pytest.fixture
def two(tmp_path: Path, postgres_database: str, fake: FakeLLM) -> Iterator[tuple[RunningApp, RunningApp, Runtime]]:
    """Processes A and B on one database (one secret key, as a deployment shares it; the AI on the fake
    provider), and its services."""
    env = {"CHATAPP_DATABASE_URL": postgres_database, "CHATAPP_SECRET_KEY": SECRET}
    env |= {"CHATAPP_MESSAGE_BURST": "5", "CHATAPP_MESSAGE_PER_SECOND": "0.2"}  # one limit, both processes
    env["CHATAPP_PRESENCE_LOST_AFTER"] = "3"  # a killed process's connections leave within 3 s (a beat a second)
    env["CHATAPP_BUS_PEER_LOST_AFTER"] = "2"  # a process silent on the bus for 2 s is taken for dead
    env |= {"CHATAPP_AI_MODEL": "openai/fake-model", "CHATAPP_AI_API_BASE": fake.base_url, "CHATAPP_AI_API_KEY": "k"}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = start_app(tmp_path / "a" / "data", env)
    b = start_app(tmp_path / "b" / "data", env)
    runtime = build_runtime(Settings(data_dir=tmp_path / "t", database_url=postgres_database, pubsub_url="memory://"))
    migrate_database(runtime)
    try:
        yield a, b, runtime
    finally:
        runtime.engine.dispose()
        stop_app(a)
        stop_app(b)


def api(app: RunningApp, token: str) -> httpx.Client:
    return httpx.Client(base_url=f"{app.base_url}/api/v1", headers={"Authorization": f"Bearer {token}"})


async def test_what_is_done_through_one_process_reaches_the_sockets_of_the_other(two) -> None:
    a, b, runtime = two
    alice, _ = await sign_up(runtime, "alice")
    bob, _ = await sign_up(runtime, "bob")
    room = await runtime.services.rooms.create_room(alice, name="Ops")
    await runtime.services.membership.join(bob, room.id)
    alice_on_b = api(b, await token_for(runtime, alice, "read", "write", "admin"))
    async with websockets.connect(socket_url(a, token=await token_for(runtime, bob))) as ws:
        bob_on_a = Client(ws)
        join_ref, joined = await bob_on_a.join(room.id)
        assert joined["status"] == "ok"
        posted = alice_on_b.post(f"/rooms/{room.id}/messages", json={"body": "from process B"}).json()
        assert (await bob_on_a.wait_for("message_posted"))[4]["message"]["body"] == "from process B"
        alice_on_b.patch(f"/rooms/{room.id}/messages/{posted['id']}", json={"body": "edited on B"})
        assert (await bob_on_a.wait_for("message_updated"))[4]["message"]["body"] == "edited on B"
        alice_on_b.delete(f"/rooms/{room.id}/messages/{posted['id']}")
        assert (await bob_on_a.wait_for("message_deleted"))[4]["message_id"] == posted["id"]
        alice_on_b.patch(f"/rooms/{room.id}", json={"topic": "set on B"})
        await bob_on_a.wait_for("room_changed")
        mine = await bob_on_a.call(f"room:{room.id}", "post", {"body": "from process A"}, join_ref)
        assert mine["status"] == "ok"
        page = alice_on_b.get(f"/rooms/{room.id}/messages").json()
        assert [m["body"] for m in page["messages"]] == ["from process A"]

        alice_on_b.delete(f"/rooms/{room.id}/participants/{joined['response']['participant_id']}")
        assert (await bob_on_a.wait_for("removed"))[4] == {"reason": "removed"}


async def test_a_token_revoked_through_one_process_closes_its_socket_on_the_other(two) -> None:
    a, b, runtime = two
    alice, _ = await sign_up(runtime, "alice")
    token = await runtime.services.tokens.create_token(alice, name="doomed", scopes=["read"])
    manager = api(b, await token_for(runtime, alice, "admin"))
    async with websockets.connect(socket_url(a, token=token.value)) as ws:
        assert (await Client(ws).call("phoenix", "heartbeat", {}))["status"] == "ok"
        started = asyncio.get_running_loop().time()
        assert manager.delete(f"/tokens/{token.token.id}").status_code == 204
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), timeout=LIVENESS_S)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001
        assert asyncio.get_running_loop().time() - started < 1.5


async def test_a_lost_listener_tells_the_sockets_to_rejoin_and_the_rejoin_has_what_was_missed(two) -> None:
    a, b, runtime = two
    alice, _ = await sign_up(runtime, "alice")
    room = await runtime.services.rooms.create_room(alice, name="Ops")
    seen = await runtime.services.chat.post_message(alice, room.id, "seen")
    poster = api(b, await token_for(runtime, alice, "write"))
    async with websockets.connect(socket_url(a, token=await token_for(runtime, alice))) as ws:
        client = Client(ws)
        join_ref, joined = await client.join(room.id)
        since = joined["response"]["server_time"]
        engine = create_engine(runtime.settings.resolved_database_url)
        with engine.connect() as conn:  # every process's listening connection, from the server's side
            ended = conn.execute(
                text(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND application_name = 'chatapp bus listener'"
                )
            ).scalar()
        engine.dispose()
        assert ended == 2
        missed = poster.post(f"/rooms/{room.id}/messages", json={"body": "while A was deaf"}).json()
        error = await client.wait_for("phx_error")
        assert error[0] == join_ref and error[2] == f"room:{room.id}"
        _, rejoined = await client.join(room.id, last_message_id=seen.id, since=since)
        got = rejoined["response"]["missed"]
        assert missed["id"] in [m["id"] for m in got["new"]]
        later = poster.post(f"/rooms/{room.id}/messages", json={"body": "A hears again"}).json()
        assert (await client.wait_for("message_posted"))[4]["message"]["id"] in (missed["id"], later["id"])
    health = httpx.get(f"{a.base_url}/healthz").json()
    assert health == {"status": "ok", "database": "ok", "bus": "ok"}


async def test_a_message_saved_by_a_process_that_died_before_telling_reaches_the_other_sockets(two) -> None:
    """A process killed between its commit and its NOTIFY: its message, with an id below one the socket
    already has, comes in the socket's rejoin once its process takes the silent one for dead."""
    a, b, runtime = two
    alice, _ = await sign_up(runtime, "alice")
    room = await runtime.services.rooms.create_room(alice, name="Ops")
    people = await runtime.services.membership.list_participants(alice, room.id)
    (me,) = [p for p in people if p.user_id == alice.user_id]
    poster = api(a, await token_for(runtime, alice, "write"))
    engine = create_engine(runtime.settings.resolved_database_url)
    async with websockets.connect(socket_url(b, token=await token_for(runtime, alice))) as ws:
        client = Client(ws)
        join_ref, joined = await client.join(room.id)
        with engine.connect() as conn:  # the doomed process is heard once
            conn.execute(text("SELECT pg_notify('chatapp', :p)"), {"p": '{"o":"doomed","s":1,"e":[]}'})
            conn.commit()
        with engine.begin() as doomed:  # its transaction: the id first, the commit last, and never told
            late_id = doomed.execute(
                text(
                    "INSERT INTO messages (room_id, participant_id, body, created_at, status) "
                    "VALUES (:room, :me, 'never told', now(), 'complete') RETURNING id"
                ),
                {"room": room.id, "me": me.id},
            ).scalar_one()
            shown = poster.post(f"/rooms/{room.id}/messages", json={"body": "told"}).json()
            assert (await client.wait_for("message_posted"))[4]["message"]["id"] == shown["id"] > late_id
        error = await client.wait_for("phx_error")  # B took the silent process for dead
        assert error[0] == join_ref
        _, rejoined = await client.join(room.id, last_message_id=shown["id"], since=joined["response"]["server_time"])
        assert late_id in [m["id"] for m in rejoined["response"]["missed"]["new"]]
    engine.dispose()


async def test_the_ai_asked_on_one_process_streams_to_the_other_which_stops_it(two, fake: FakeLLM) -> None:
    a, b, runtime = two
    alice, _ = await sign_up(runtime, "alice")
    bob, _ = await sign_up(runtime, "bob")
    room = await runtime.services.rooms.create_room(alice, name="Ops")
    await runtime.services.membership.join(bob, room.id)
    fake.push(Script(tokens=400, tokens_per_second=40))
    async with (
        websockets.connect(socket_url(a, token=await token_for(runtime, alice))) as on_a,
        websockets.connect(socket_url(b, token=await token_for(runtime, bob))) as on_b,
    ):
        alice_a, bob_b = Client(on_a), Client(on_b)
        ref_a, _ = await alice_a.join(room.id)
        ref_b, _ = await bob_b.join(room.id)
        asked = await alice_a.call(f"room:{room.id}", "ask_ai", {}, ref_a)
        assert asked["status"] == "ok"
        reply_id = asked["response"]["ai_reply"]["reply_id"]
        assert (await bob_b.wait_for("ai_reply_started"))[4]["reply_id"] == reply_id
        assert (await bob_b.wait_for("ai_reply_delta"))[4]["text"]
        again = await bob_b.call(f"room:{room.id}", "ask_ai", {}, ref_b)  # one reply per room, anywhere
        assert again["status"] == "error" and again["response"]["code"] == "conflict"
        stopped = await bob_b.call(f"room:{room.id}", "stop_ai", {}, ref_b)
        assert stopped == {"status": "ok", "response": {"stopped": True}}
        for client in (alice_a, bob_b):
            ended = await client.wait_for("ai_reply_ended")
            assert ended[4]["reply_id"] == reply_id and ended[4]["status"] == "stopped"
    request = fake.last_request
    await fake.wait_until_async(lambda: request.done)
    assert request.disconnected_early  # the provider stopped writing too


async def test_a_rate_limit_holds_the_same_across_processes(two) -> None:
    a, b, runtime = two
    alice, _ = await sign_up(runtime, "alice")
    room = await runtime.services.rooms.create_room(alice, name="Ops")
    token = await token_for(runtime, alice, "write")
    on_a, on_b = api(a, token), api(b, token)
    for n in range(5):  # the burst, spread over both processes
        client = on_a if n % 2 else on_b
        assert client.post(f"/rooms/{room.id}/messages", json={"body": f"m{n}"}).status_code == 201
    for client in (on_a, on_b):
        refused = client.post(f"/rooms/{room.id}/messages", json={"body": "one too many"})
        assert refused.status_code == 429, refused.text
        assert 1 <= int(refused.headers["retry-after"]) <= 5


async def test_presence_covers_both_processes_and_a_killed_ones_connections_leave(two) -> None:
    a, b, runtime = two
    alice, _ = await sign_up(runtime, "alice")
    bob, _ = await sign_up(runtime, "bob")
    room = await runtime.services.rooms.create_room(alice, name="Ops")
    await runtime.services.membership.join(bob, room.id)
    async with websockets.connect(socket_url(a, token=await token_for(runtime, alice))) as on_a:
        alice_a = Client(on_a)
        await alice_a.join(room.id)
        assert list((await alice_a.wait_for("presence_state"))[4]) == [f"user:{alice.user_id}"]
        async with websockets.connect(socket_url(b, token=await token_for(runtime, bob))) as on_b:
            bob_b = Client(on_b)
            await bob_b.join(room.id)
            state = (await bob_b.wait_for("presence_state"))[4]  # what process B knows: A's too
            assert set(state) == {f"user:{alice.user_id}", f"user:{bob.user_id}"}
            joined = await diff_about(alice_a, "joins", f"user:{bob.user_id}")
            assert joined["joins"][f"user:{bob.user_id}"]["metas"][0]["via"] == "socket"
        await diff_about(alice_a, "leaves", f"user:{bob.user_id}")  # bob closed his socket on B

        async with websockets.connect(socket_url(b, token=await token_for(runtime, bob))) as on_b:
            await Client(on_b).join(room.id)
            await diff_about(alice_a, "joins", f"user:{bob.user_id}")
            b.process.send_signal(signal.SIGKILL)  # B dies with bob's socket open: nobody says he left
            started = asyncio.get_running_loop().time()
            await gone_from(alice_a, room.id, f"user:{bob.user_id}")
            assert asyncio.get_running_loop().time() - started < 6  # lost after 3 s, told at the next beat


async def gone_from(client: Client, room_id: int, key: str) -> None:
    """Until the presence the client is told has no `key`: a diff with it among the leaves, or, when
    its process took the dead one for gone first (a gap: phx_error), the rejoin's presence_state."""
    while True:
        frame = await client.next_frame()
        if frame[3] == "presence_diff" and key in frame[4]["leaves"]:
            return
        if frame[3] == "phx_error":
            await client.join(room_id)
            state = await client.wait_for("presence_state")
            if key not in state[4]:
                return


async def diff_about(client: Client, side: str, key: str) -> dict:
    """The next presence_diff with `key` among its joins or leaves (one's own join is told too)."""
    while True:
        diff = (await client.wait_for("presence_diff"))[4]
        if key in diff[side]:
            return diff

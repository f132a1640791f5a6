"""The official phoenix JavaScript client (npm, pinned in tests/js/package-lock.json, run by Node) in a room
of a real `python -m chatapp`: join, presence, live messages, a post with its reply, the AI's words
streaming, and a rejoin after a server restart that loses nothing.

Mandatory where CHATAPP_REQUIRE_NODE=1 (CI: `.ci/run` installs the client with `npm ci`); elsewhere it
skips with a reason when Node or the installed client is missing."""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatapp.app import Runtime, build_runtime, migrate_database
from chatapp.config import Settings
from tests.browser.conftest import RunningApp, start_app, stop_app
from tests.domain.helpers import sign_up
from tests.fake_llm import FakeLLM, Script
from tests.timing import LIVENESS_S

JS_DIR = Path(__file__).resolve().parent.parent / "js"
CLIENT = JS_DIR / "room_client.mjs"


def _node_or_skip() -> str:
    node = shutil.which("node")
    missing = None
    if node is None:
        missing = "Node is not installed"
    elif not (JS_DIR / "node_modules" / "phoenix").is_dir():
        missing = "the phoenix client is not installed (npm ci --prefix tests/js)"
    if missing:
        if os.environ.get("CHATAPP_REQUIRE_NODE") == "1":
            pytest.fail(f"{missing}, and CHATAPP_REQUIRE_NODE=1 makes this test mandatory")
        pytest.skip(missing)
    assert node is not None
    return node


class NodeClient:
    """The phoenix.js client in a subprocess: JSON lines out (what it saw), JSON lines in (what to push)."""

    def __init__(self, node: str, endpoint: str, token: str, room_id: int, how: str) -> None:
        self.process = subprocess.Popen(
            [node, str(CLIENT), endpoint, token, str(room_id), how],
            cwd=JS_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.passed: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(json.loads(line))

    def expect(self, key: str, *, event: str | None = None) -> dict[str, Any]:
        """The first line not yet expected with `key` (and, for "event", that event), within LIVENESS_S;
        the lines passed over meanwhile are kept for later expectations."""
        for line in self.passed:
            if key in line and (event is None or line.get("event") == event):
                self.passed.remove(line)
                return line
        while True:
            try:
                line = self.lines.get(timeout=LIVENESS_S)
            except queue.Empty:
                stderr = self.process.stderr.read() if self.process.poll() is not None and self.process.stderr else ""
                raise AssertionError(f"phoenix.js client: no {key} {event or ''} line ({stderr})") from None
            if key in line and (event is None or line.get("event") == event):
                return line
            self.passed.append(line)

    def push(self, event: str, payload: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"push": event, "payload": payload}) + "\n")
        self.process.stdin.flush()
        return self.expect("reply")["reply"]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=LIVENESS_S)


@pytest.fixture
def node() -> str:
    return _node_or_skip()


@pytest.fixture
def fake() -> Iterator[FakeLLM]:
    with FakeLLM() as llm:
        yield llm


def _start(data_dir: Path, fake: FakeLLM, port: int | None = None) -> RunningApp:
    env = {"CHATAPP_AI_MODEL": "openai/fake-model", "CHATAPP_AI_API_BASE": fake.base_url, "CHATAPP_AI_API_KEY": "k"}
    return start_app(data_dir, {**env, "CHATAPP_AI_RETRIES": "0"}, port=port)


@pytest.fixture
def world(tmp_path: Path, fake: FakeLLM) -> Iterator[tuple[RunningApp, Runtime, Path]]:
    data_dir = tmp_path / "data"
    app = _start(data_dir, fake)
    runtime = build_runtime(Settings(data_dir=data_dir))
    migrate_database(runtime)
    try:
        yield app, runtime, data_dir
    finally:
        runtime.engine.dispose()
        stop_app(app)


def endpoint(app: RunningApp) -> str:
    return app.base_url.replace("http", "ws") + "/api/socket"  # phoenix.js adds /websocket and ?vsn=2.0.0


@pytest.mark.parametrize("how", ["authToken", "params"])
async def test_phoenix_js_joins_hears_posts_and_sees_the_ai_stream(node, world, fake, how: str) -> None:
    app, runtime, _ = world
    alice, _ = await sign_up(runtime, "alice")
    room = await runtime.services.rooms.create_room(alice, name="Ops")
    token = (await runtime.services.tokens.create_token(alice, name="js", scopes=["read", "write", "ai"])).value
    client = NodeClient(node, endpoint(app), token, room.id, how)
    try:
        joined = client.expect("joined")["joined"]
        assert joined["room"]["name"] == "Ops" and joined["messages"] == []
        here = client.expect("presence")["presence"]
        assert here == [{"key": f"user:{alice.user_id}", "via": ["socket"]}]  # itself, counted once
        headers = {"Authorization": f"Bearer {token}"}
        httpx.post(f"{app.base_url}/api/v1/rooms/{room.id}/messages", headers=headers, json={"body": "from REST"})
        heard = client.expect("event", event="message_posted")
        assert heard["payload"]["message"]["body"] == "from REST"
        reply = client.push("post", {"body": "from phoenix.js", "client_message_id": "phoenix-js-1"})
        assert reply["status"] == "ok" and reply["response"]["message"]["client_message_id"] == "phoenix-js-1"
        fake.set_default(Script(reply="Streaming to every socket at once", tokens_per_second=50))
        assert client.push("ask_ai", {})["status"] == "ok"
        client.expect("event", event="ai_reply_started")
        assert client.expect("event", event="ai_reply_delta")["payload"]["text"]
        ended = client.expect("event", event="ai_reply_ended")["payload"]
        assert ended["status"] == "complete"
        posted = [client.expect("event", event="message_posted")["payload"]["message"] for _ in range(2)]
        assert [m["body"] for m in posted] == ["from phoenix.js", "Streaming to every socket at once"]
        assert posted[1]["author_kind"] == "ai"  # everyone's words come to everyone, the sender's too
    finally:
        client.close()


async def test_phoenix_js_rejoins_after_a_server_restart_and_loses_nothing(node, world, fake) -> None:
    app, runtime, data_dir = world
    alice, _ = await sign_up(runtime, "alice")
    room = await runtime.services.rooms.create_room(alice, name="Ops")
    token = (await runtime.services.tokens.create_token(alice, name="js", scopes=["read", "write"])).value
    client = NodeClient(node, endpoint(app), token, room.id, "authToken")
    restarted = None
    try:
        client.expect("joined")
        assert client.push("post", {"body": "before the restart"})["status"] == "ok"
        stop_app(app)
        client.expect("socket")  # the client saw it go (close or error) and keeps trying
        missed = await runtime.services.chat.post_message(alice, room.id, "while the server was down")
        restarted = _start(data_dir, fake, port=int(app.base_url.rsplit(":", 1)[1]))
        rejoined = client.expect("joined")["joined"]
        assert [m["id"] for m in rejoined["missed"]["new"]] == [missed.id]
        assert client.push("post", {"body": "after the restart"})["status"] == "ok"
    finally:
        client.close()
        if restarted is not None:
            stop_app(restarted)
    bodies = [m.body for m in (await runtime.services.chat.list_messages(alice, room.id)).messages]
    assert bodies == ["before the restart", "while the server was down", "after the restart"]

"""examples/dice_bot.py, as its README section says to run it, answers in a room of a real server."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from chatapp.app import Runtime
from tests.api.conftest import running_server
from tests.browser.conftest import RunningApp
from tests.domain.helpers import sign_up
from tests.timing import LIVENESS_S

BOT = Path(__file__).resolve().parent.parent.parent / "examples" / "dice_bot.py"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[RunningApp, Runtime]]:
    with running_server(tmp_path / "data") as running:
        yield running


async def test_the_example_bot_answers_a_command(server) -> None:
    app, runtime = server
    alice, _ = await sign_up(runtime, "alice")
    tokens = runtime.services.tokens
    bot = await tokens.create_bot(alice, username="dicebot", display_name="Dice")
    bot_token = (await tokens.create_token(alice, name="dice", scopes=["read", "write"], bot_id=bot.id)).value
    room = await runtime.services.rooms.create_room(alice, name="Games")
    await runtime.services.membership.add_bot(alice, room.id, "dicebot")
    alice_token = (await tokens.create_token(alice, name="me", scopes=["read", "write"])).value
    process = subprocess.Popen(
        [sys.executable, str(BOT), "--url", app.base_url, "--room", str(room.id), "--token", bot_token],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "joined Games"
        headers = {"Authorization": f"Bearer {alice_token}"}
        url = f"{app.base_url}/api/v1/rooms/{room.id}/messages"
        for body in ("!roll 20", "just talking", "!help"):
            assert httpx.post(url, headers=headers, json={"body": body}).status_code == 201
        deadline = time.monotonic() + LIVENESS_S
        while time.monotonic() < deadline:
            bodies = [m["body"] for m in httpx.get(url, headers=headers).json()["messages"]]
            if len(bodies) >= 5:
                break
            time.sleep(0.1)
        assert bodies[0] == "!roll 20" and bodies[2] == "just talking"
        answers = [b for b in bodies if b not in ("!roll 20", "just talking", "!help")]
        assert len(answers) == 2 and "(of 20)" in answers[0] and "!roll" in answers[1]
    finally:
        process.kill()
        process.wait(timeout=LIVENESS_S)

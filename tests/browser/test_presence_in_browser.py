"""Real Chromium: a browser tab in a room counts in the room socket's presence (Phoenix's format), and
leaves it when the tab closes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from websockets.sync.client import connect

from tests.browser.conftest import start_app, stop_app
from tests.browser.test_chat_in_browser import create_room, sign_up
from tests.test_cli_and_config import clean_env
from tests.timing import LIVENESS_S

pytestmark = pytest.mark.browser


def token_for(data_dir, username: str) -> str:
    """A token made as an operator would (`create-token`), alone on the last line."""
    made = subprocess.run(
        [sys.executable, "-m", "chatapp", "create-token", username, "--name", "presence", "--scopes", "read"],
        env=clean_env(data_dir),
        capture_output=True,
        text=True,
        check=True,
        timeout=LIVENESS_S,
    )
    return made.stdout.strip().splitlines()[-1]


def frames_until(ws, event: str) -> dict:
    while True:
        frame = json.loads(ws.recv(timeout=LIVENESS_S))
        if frame[3] == event:
            return frame[4]


@pytest.fixture
def live_app(tmp_path):
    """The app, forgetting a closed tab after 2 s (NiceGUI keeps a tab's page that long for it to come back)."""
    app = start_app(tmp_path / "data", {"CHATAPP_RECONNECT_TIMEOUT": "2"})
    yield app
    stop_app(app)


def test_a_browser_tab_is_present_in_the_room_until_it_closes(browser, live_app) -> None:
    context = browser.new_context()
    page = sign_up(context, live_app.base_url, "alice", "Alice")
    room_url = create_room(page, "Ops")
    room_id = int(room_url.rsplit("/", 1)[1])
    token = token_for(live_app.data_dir, "alice")
    url = live_app.base_url.replace("http", "ws") + f"/api/socket/websocket?vsn=2.0.0&token={token}"
    with connect(url) as ws:
        ws.send(json.dumps(["1", "1", f"room:{room_id}", "phx_join", {}]))
        assert frames_until(ws, "phx_reply")["status"] == "ok"
        state = frames_until(ws, "presence_state")
        (key,) = state
        assert sorted(meta["via"] for meta in state[key]["metas"]) == ["browser", "socket"]
        assert {meta["display_name"] for meta in state[key]["metas"]} == {"Alice"}
        page.close()  # the tab goes: its meta leaves once NiceGUI gives up waiting for it to come back
        while True:
            diff = frames_until(ws, "presence_diff")
            if diff["leaves"]:
                break
        assert [meta["via"] for meta in diff["leaves"][key]["metas"]] == ["browser"]
    context.close()

"""A small chatapp bot: it joins a room through the room socket and answers `!roll` (or `!roll 20`)
with a dice roll, and `!help` with what it can do. No chatapp code: only the `websockets` package.

    python examples/dice_bot.py --url http://127.0.0.1:8080 --room 1 --token "$CHATAPP_TOKEN"

Make the bot and its token on Account settings (Bots, then Personal access tokens "for" the bot, with
the read and write scopes), or with `python -m chatapp create-token YOU --name dice --bot dicebot`;
then a room's owner or moderator adds it: POST /api/v1/rooms/ROOM/bots {"username": "dicebot"}.
It speaks Phoenix Channels v2 frames, [join_ref, ref, topic, event, payload], sends a heartbeat every
30 seconds, and after any disconnect rejoins with the last message it saw, so it misses nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import re

import websockets

ROLL = re.compile(r"^!roll(?:\s+(\d{1,4}))?\s*$")
HELP = "I answer `!roll` (a six-sided die) or `!roll N` (a die of N sides)."


def answer(body: str) -> str | None:
    """What the bot says to a message, or None."""
    text = body.strip()
    if text == "!help":
        return HELP
    if match := ROLL.match(text):
        sides = max(2, int(match.group(1) or 6))
        return f"🎲 {random.randint(1, sides)} (of {sides})"  # noqa: S311 (a game, not a secret)
    return None


class DiceBot:
    def __init__(self, url: str, room_id: int, token: str) -> None:
        self.endpoint = url.replace("http", "ws", 1).rstrip("/") + "/api/socket/websocket?vsn=2.0.0"
        self.topic, self.token = f"room:{room_id}", token
        self.refs = itertools.count(1)
        self.me: int | None = None  # my participant id: I never answer myself
        self.last_id: int | None = None
        self.since: str | None = None

    async def run_forever(self) -> None:
        while True:
            try:
                await self.run_once()
            except (OSError, websockets.ConnectionClosed) as problem:
                print(f"disconnected ({problem}); reconnecting", flush=True)
            await asyncio.sleep(1)

    async def run_once(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with websockets.connect(self.endpoint, additional_headers=headers) as ws:
            join_ref = str(next(self.refs))
            resume = {} if self.last_id is None else {"last_message_id": self.last_id, "since": self.since}
            await ws.send(json.dumps([join_ref, join_ref, self.topic, "phx_join", resume]))
            beat = asyncio.create_task(self.heartbeat(ws))
            try:
                async for text in ws:
                    await self.handle(ws, join_ref, json.loads(text))
            finally:
                beat.cancel()

    async def heartbeat(self, ws) -> None:
        while True:
            await asyncio.sleep(30)
            await ws.send(json.dumps([None, str(next(self.refs)), "phoenix", "heartbeat", {}]))

    async def handle(self, ws, join_ref: str, frame: list) -> None:
        _join_ref, ref, topic, event, payload = frame
        if event == "phx_reply" and ref == join_ref:
            if payload["status"] != "ok":
                raise SystemExit(f"could not join {self.topic}: {payload['response']}")
            response = payload["response"]
            self.me, self.since = response["participant_id"], response["server_time"]
            missed = response.get("missed") or {}
            for message in response.get("messages", []) + missed.get("new", []):
                self.last_id = max(self.last_id or 0, message["id"])
            print(f"joined {response['room']['name']}", flush=True)
        elif event == "message_posted" and topic == self.topic:
            message = payload["message"]
            self.last_id = max(self.last_id or 0, message["id"])
            reply = answer(message["body"]) if message["participant_id"] != self.me else None
            if reply is not None:
                post = {"body": reply, "client_message_id": f"dice-{message['id']:08d}"}  # a retry is not a copy
                await ws.send(json.dumps([join_ref, str(next(self.refs)), self.topic, "post", post]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--room", type=int, required=True)
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    asyncio.run(DiceBot(args.url, args.room, args.token).run_forever())


if __name__ == "__main__":
    main()

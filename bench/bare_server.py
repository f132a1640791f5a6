"""The stack's own limit: a bare python-socketio server that broadcasts one payload to every socket.

Run: python -m bench.bare_server PORT. Sockets connect at /_nicegui_ws/socket.io (like NiceGUI's);
POST /broadcast with a JSON body emits it once to the room of all connected sockets; a socket's
"post" event is emitted the same way. With BENCH_REDIS_URL set, to those of every such server.
"""

from __future__ import annotations

import os
import sys

import socketio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from chatapp.live.wire import MESSAGES_EVENT  # the same event name as chatapp's

# With BENCH_REDIS_URL, several of these servers fan out through Redis, python-socketio's own way across
# processes (bench/scaleout.py): an emit goes to the sockets of every server on BENCH_REDIS_CHANNEL.
_REDIS_URL = os.environ.get("BENCH_REDIS_URL")
_manager = (
    socketio.AsyncRedisManager(_REDIS_URL, channel=os.environ.get("BENCH_REDIS_CHANNEL", "bench"))
    if _REDIS_URL
    else None
)
sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins=[], client_manager=_manager)
ROOM = "everyone"


@sio.event
async def connect(sid: str, _environ: dict, _auth: object = None) -> None:
    await sio.enter_room(sid, ROOM)


@sio.on("post")
async def post(_sid: str, payload: dict) -> None:
    """A client posts: the payload goes to every socket (the writes scenario's baseline)."""
    await sio.emit(MESSAGES_EVENT, payload, room=ROOM)


async def broadcast(request: Request) -> JSONResponse:
    payload = await request.json()
    await sio.emit(MESSAGES_EVENT, payload, room=ROOM)
    return JSONResponse({"ok": True})


async def health(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


web = Starlette(routes=[Route("/broadcast", broadcast, methods=["POST"]), Route("/healthz", health)])
app = socketio.ASGIApp(sio, other_asgi_app=web, socketio_path="/_nicegui_ws/socket.io")

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", ws="wsproto")

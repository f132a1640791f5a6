"""The room socket's floor: a bare Starlette WebSocket server that sends one text to every socket.

Run: python -m bench.bare_ws_server PORT [--no-deflate]. Sockets connect at /ws; POST /broadcast with a text body sends
it, as it is, to every connected socket, one after another (what a hand-written broadcast does); a
socket's own message is sent to every socket the same way (the posts scenario's floor). uvicorn offers
permessage-deflate by default; --no-deflate turns it off (chatapp's room socket does not compress).
"""

from __future__ import annotations

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

sockets: set[WebSocket] = set()


async def send_to_all(text: str) -> None:
    for socket in list(sockets):
        try:
            await socket.send_text(text)
        except (WebSocketDisconnect, RuntimeError):
            sockets.discard(socket)


async def endpoint(websocket: WebSocket) -> None:
    await websocket.accept()
    sockets.add(websocket)
    try:
        while True:
            await send_to_all(await websocket.receive_text())
    except WebSocketDisconnect:
        pass
    finally:
        sockets.discard(websocket)


async def broadcast(request: Request) -> JSONResponse:
    await send_to_all((await request.body()).decode())
    return JSONResponse({"ok": True})


async def health(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


app = Starlette(
    routes=[
        WebSocketRoute("/ws", endpoint),
        Route("/broadcast", broadcast, methods=["POST"]),
        Route("/healthz", health),
    ]
)

if __name__ == "__main__":
    # wsproto, as chatapp's server (NiceGUI's ui.run sets ws="wsproto"): the same WebSocket stack, so the
    # ratio measures chatapp, not uvicorn's two implementations (websockets' C speedups write ~3x faster).
    deflate = "--no-deflate" not in sys.argv[2:]
    uvicorn.run(
        app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", ws="wsproto", ws_per_message_deflate=deflate
    )

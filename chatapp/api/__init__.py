"""The API for every client that is not a chatapp page: REST under /api/v1 (OpenAPI document and
offline docs included) and, next to it, the room socket. Both act through the domain, as pages do."""

from __future__ import annotations

from fastapi import FastAPI, WebSocket
from fastapi_offline import FastAPIOffline

from chatapp.api import rest_messages, rest_people, rest_rooms, rest_tokens, rest_webhooks
from chatapp.api.errors import install_error_handlers
from chatapp.api.schemas import ErrorOut
from chatapp.api.socket import SOCKET_PATH, RoomSocket, SocketLimits
from chatapp.api.socket_hub import SocketRoomHubs
from chatapp.config import Settings
from chatapp.domain.services import Services
from chatapp.live.presence import RoomPresence

API_PREFIX = "/api/v1"
_ERRORS: dict[int | str, dict] = {
    status: {"model": ErrorOut, "description": meaning}
    for status, meaning in (
        (401, "No token, or one unknown, revoked or expired"),
        (403, "The token lacks the scope, or the room refuses it"),
        (404, "No such thing, or not one the caller may see"),
        (409, "It clashes with the current state"),
        (422, "The input is not valid"),
        (429, "Too many: try again after Retry-After seconds"),
    )
}


def build_rest_api(services: Services) -> FastAPI:
    """The REST API as an application of its own, mounted at API_PREFIX (its own OpenAPI document,
    docs page and error handlers, apart from the pages')."""
    api = FastAPIOffline(
        title="chatapp API",
        version="1",
        description="Rooms, people, messages and the AI of chatapp. Send a personal access token as "
        "`Authorization: Bearer <token>` (Account settings, or `python -m chatapp create-token`).",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        static_url="/docs-static",
        responses=_ERRORS,
    )
    api.state.services = services
    install_error_handlers(api)
    for module in (rest_rooms, rest_messages, rest_people, rest_tokens, rest_webhooks):
        api.include_router(module.router)
    return api


def socket_limits(settings: Settings) -> SocketLimits:
    """The room socket's limits from settings."""
    return SocketLimits(
        max_frame_bytes=settings.socket_max_frame_bytes,
        max_channels=settings.socket_max_channels,
        idle_timeout_s=settings.socket_idle_timeout,
        max_backlog=settings.socket_max_backlog,
        frames_burst=settings.socket_frames_burst,
        frames_per_second=settings.socket_frames_per_second,
    )


def register_api(app: FastAPI, services: Services, settings: Settings, presence: RoomPresence) -> None:
    """Mount the REST API and route the room socket on the server's app (before it starts), in place of
    those registered before: the tests build several apps in one process on NiceGUI's one global app."""
    ours = (API_PREFIX, SOCKET_PATH)
    app.router.routes[:] = [route for route in app.router.routes if getattr(route, "path", None) not in ours]
    app.mount(API_PREFIX, build_rest_api(services))
    hubs, limits = SocketRoomHubs(services, presence), socket_limits(settings)

    async def room_socket(websocket: WebSocket) -> None:
        await RoomSocket(websocket, services, hubs, limits).serve()

    app.add_api_websocket_route(SOCKET_PATH, room_socket)
